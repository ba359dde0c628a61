"""A proxy on loopback in front of the local Secrets Manager that counts calls and injects faults.

Point AWS_ENDPOINT_URL_SECRETS_MANAGER at it; it forwards every request to
moto unchanged and counts them by the X-Amz-Target header
("secretsmanager.GetSecretValue" -> "GetSecretValue"). `fail_with(fault)`
makes it answer every request with that fault instead (an AWS error, a 5xx,
or a hang), until `heal()`.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

# The faults Secrets Manager can answer with, as (HTTP status, AWS error code, message).
FAULTS: dict[str, tuple[int, str, str]] = {
    "throttling": (400, "ThrottlingException", "Rate exceeded"),
    "access-denied": (
        400,
        "AccessDeniedException",
        "User is not authorized to perform: secretsmanager:GetSecretValue because no identity-based policy allows it",
    ),
    "kms-decryption-failure": (
        400,
        "DecryptionFailure",
        "Secrets Manager can't decrypt the protected secret text using the provided KMS key.",
    ),
    "marked-for-deletion": (
        400,
        "InvalidRequestException",
        "You can't perform this operation on the secret because it was marked for deletion.",
    ),
    "internal-error": (500, "InternalServiceError", "An error occurred on the server side."),
    "unavailable": (503, "ServiceUnavailable", "Service Unavailable"),
}
HANG = "timeout"


class SecretsManagerProxy:
    def __init__(self, upstream_url: str) -> None:
        upstream = urlsplit(upstream_url)
        self._upstream = (upstream.hostname or "127.0.0.1", upstream.port or 80)
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._fault: str | None = None
        self._release = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="sm-proxy", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> SecretsManagerProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()

    def fail_with(self, fault: str) -> None:
        """Answer every request with this fault (a key of FAULTS, or "timeout" to hang)."""
        if fault != HANG and fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}")
        self._release.clear()
        self._fault = fault

    def heal(self) -> None:
        self._fault = None
        self._release.set()

    def count(self, operation: str) -> int:
        with self._lock:
            return self.calls[operation]

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                operation = (self.headers.get("X-Amz-Target") or "unknown").rsplit(".", 1)[-1]
                with proxy._lock:
                    proxy.calls[operation] += 1
                fault = proxy._fault
                if fault == HANG:
                    proxy._release.wait(60)
                    return
                if fault is not None:
                    status, code, message = FAULTS[fault]
                    payload = json.dumps({"__type": code, "message": message}).encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/x-amz-json-1.1")
                    self.send_header("x-amzn-ErrorType", code)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                upstream = http.client.HTTPConnection(*proxy._upstream, timeout=30)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                    upstream.request("POST", self.path, body=body, headers=headers)
                    answer = upstream.getresponse()
                    payload = answer.read()
                    self.send_response(answer.status)
                    for name, value in answer.getheaders():
                        if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                            self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                finally:
                    upstream.close()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
