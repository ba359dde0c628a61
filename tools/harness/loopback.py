"""The one HTTP server every local stand-in is built on: a thread on 127.0.0.1 that hands each
request to its owner's `handle(exchange)`.

What each stand-in would otherwise copy lives here once: a free loopback port (or a given
one), HTTP/1.1 keep-alive, Nagle's algorithm off (headers and body otherwise wait ~40 ms for
the client's delayed ACK), status, headers and body sent in one write, no request logging,
a `released` event that ends any held (hanging) request on stop, and start/stop as a context
manager. A stopped server can be stopped again.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterable, Mapping
from functools import cached_property
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

HOST = "127.0.0.1"


def free_port() -> int:
    """A loopback port free at the time of the call (for servers started by another process)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class Exchange:
    """One request and its answer, as the owner's `handle` sees it."""

    def __init__(self, handler: _Handler) -> None:
        self._handler = handler
        self.method = handler.command
        self.target = handler.path  # path and query, as sent
        self.headers = handler.headers
        self.answered = False

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @cached_property
    def body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self._handler.rfile.read(length) if length else b""

    def header(self, name: str) -> str | None:
        value = self.headers.get(name)
        return None if value is None else str(value)

    def reply(
        self,
        status: int,
        body: bytes = b"",
        headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        *,
        send_bytes: int | None = None,
    ) -> None:
        """Status, headers and body in one write. `send_bytes`: announce the whole body, send only
        that many bytes of it and close the connection (an answer cut off part-way)."""
        self.body  # noqa: B018 (reads what is left of the request, so the connection can be reused)
        handler = self._handler
        items = headers.items() if isinstance(headers, Mapping) else headers
        handler.send_response_only(status)
        for name, value in items:
            if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        sent = body if send_bytes is None else body[:send_bytes]
        handler._headers_buffer.append(b"\r\n" + sent)  # type: ignore[attr-defined]  # http.server's own buffer
        self.answered = True
        try:
            handler.flush_headers()
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True  # the client stopped reading: its right
        if send_bytes is not None:
            handler.close_connection = True

    def reply_json(self, status: int, document: Any, headers: Mapping[str, str] | None = None) -> None:
        self.reply(status, json.dumps(document).encode(), {"Content-Type": "application/json", **(headers or {})})

    def hold(self, server: LoopbackServer, seconds: float) -> None:
        """Answer nothing until the server is released (stopped, or healed) or `seconds` pass, then
        close the connection: a hang, as the client sees it."""
        server.released.wait(seconds)
        self.drop()

    def drop(self) -> None:
        """Close the connection without an answer."""
        self.answered = True
        self._handler.close_connection = True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def _dispatch(self) -> None:
        exchange = Exchange(self)
        self.server.owner.handle(exchange)
        if not exchange.answered:
            raise RuntimeError(f"{type(self.server.owner).__name__} left {self.command} {self.path} unanswered")

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _dispatch  # noqa: N815 (http.server's names)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: each stand-in keeps its own record of what it got


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, owner: LoopbackServer, port: int) -> None:
        self.owner = owner
        super().__init__((HOST, port), _Handler)


class LoopbackServer:
    """Base of the stand-ins: bind in the constructor (so `url` is known at once), serve after `start()`."""

    name = "loopback"

    def __init__(self, port: int = 0) -> None:
        self.released = threading.Event()
        self._server = _Server(self, port)
        # A short poll interval so that stopping takes milliseconds, not half a second.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name=self.name, daemon=True
        )
        self._state = "bound"

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def address(self) -> str:
        """host:port (the form AWS_LAMBDA_RUNTIME_API takes)."""
        return f"{HOST}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def handle(self, exchange: Exchange) -> None:
        raise NotImplementedError

    def start(self) -> Self:
        if self._state == "bound":
            self._thread.start()
            self._state = "serving"
        return self

    def stop(self) -> None:
        self.released.set()
        if self._state == "serving":
            self._server.shutdown()
        if self._state != "stopped":
            self._server.server_close()
            self._state = "stopped"

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
