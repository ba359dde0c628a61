"""ExtensionReader against a loopback stand-in: binary secrets, no proxy, the token header as Lambda sets it."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from kustomer_token.signing_secret import ExtensionReader


class _Extension:
    def __init__(self, answer: dict[str, Any]) -> None:
        self.headers: list[str | None] = []
        recorded = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                recorded.headers.append(self.headers.get("X-Aws-Parameters-Secrets-Token"))
                body = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])


@pytest.fixture
def binary_extension() -> Iterator[_Extension]:
    extension = _Extension({"SecretBinary": base64.b64encode(b"\x00binary secret").decode()})
    yield extension
    extension.server.shutdown()
    extension.server.server_close()


def test_a_binary_secret_is_decoded(binary_extension: _Extension) -> None:
    assert ExtensionReader(binary_extension.port).read("secret-id") == b"\x00binary secret"


def test_a_proxy_in_the_environment_is_not_used(binary_extension: _Extension, monkeypatch: pytest.MonkeyPatch) -> None:
    # The extension is on the function's own loopback: a proxy (here one that refuses) must not see it.
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    assert ExtensionReader(binary_extension.port).read("secret-id") == b"\x00binary secret"


def test_without_a_session_token_the_header_is_empty(
    binary_extension: _Extension, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    ExtensionReader(binary_extension.port).read("secret-id")
    assert binary_extension.headers == [""]
