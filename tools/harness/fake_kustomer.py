"""A real HTTP server on loopback that answers like Kustomer's chat settings endpoint.

It answers GET /v1/auth/customer/settings for one API key, from a script of
replies (each test says what Kustomer does: a secret, a 503 with HTML, a 429,
the wrong-pod message, a hang, an answer cut off part-way...), and records the
requests it got and, in order, the scripted replies it served.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

from tools.harness.loopback import Exchange, LoopbackServer

SETTINGS_PATH = "/v1/auth/customer/settings"


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False
    # Announces the whole body, sends half of it, and closes the connection.
    cut_off: bool = False


def secret_reply(secret: object, *, json_api: bool = True) -> Reply:
    """200 with the settings document, the secret under data.attributes (or attributes)."""
    attributes = {"secret": secret, "enabled": True}
    document: dict[str, Any] = (
        {"data": {"type": "customer_auth_settings", "id": "0123456789abcdef", "attributes": attributes}}
        if json_api
        else {"attributes": attributes}
    )
    return Reply(200, json.dumps(document).encode(), {"Content-Type": "application/json"})


def json_reply(status: int, document: object, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, json.dumps(document).encode(), {"Content-Type": "application/json", **(headers or {})})


def error_reply(status: int, title: str, headers: dict[str, str] | None = None) -> Reply:
    return json_reply(status, {"errors": [{"status": status, "title": title}]}, headers)


POD_MISMATCH_TITLE = "Auth token associated with pod prod2 but request is being handled by prod1"
HTML_PAGE = b"<!DOCTYPE html><html><head><title>503 Service Unavailable</title></head><body>down</body></html>"


@dataclass
class SeenRequest:
    method: str
    path: str
    headers: dict[str, str] = field(repr=False)


class FakeKustomer(LoopbackServer):
    name = "fake-kustomer"

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.requests: list[SeenRequest] = []
        # The scripted replies sent to requests with the right key, in order (the same object as scripted).
        self.served: list[Reply] = []
        self._replies: list[Reply] = []
        self._default: Reply = error_reply(500, "no reply scripted")
        self._lock = threading.Lock()
        super().__init__()

    def answer(self, *replies: Reply, then: Reply | None = None) -> None:
        """Answer the next requests with these replies, in order, and all later ones with `then`."""
        with self._lock:
            self._replies = list(replies)
            if then is not None:
                self._default = then
            elif replies:
                self._default = replies[-1]

    def settings_calls(self) -> list[SeenRequest]:
        return [r for r in self.requests if r.path == SETTINGS_PATH]

    def _next_reply(self) -> Reply:
        with self._lock:
            return self._replies.pop(0) if self._replies else self._default

    def handle(self, exchange: Exchange) -> None:
        self.requests.append(SeenRequest(exchange.method, exchange.target, dict(exchange.headers.items())))
        if exchange.method != "GET" or exchange.target != SETTINGS_PATH:
            self._send(exchange, error_reply(404, "Not Found"))
        elif exchange.header("Authorization") != f"Bearer {self.api_key}":
            self._send(exchange, error_reply(401, "Unauthorized"))
        else:
            reply = self._next_reply()
            with self._lock:
                self.served.append(reply)
            self._send(exchange, reply)

    def _send(self, exchange: Exchange, reply: Reply) -> None:
        if reply.hang:
            exchange.hold(self, 120)
        else:
            exchange.reply(
                reply.status, reply.body, reply.headers, send_bytes=len(reply.body) // 2 if reply.cut_off else None
            )
