"""A proxy on loopback between the Lambda runtime and the emulator's Runtime API: it sees the phases.

INIT ends when the runtime first asks for an event (GET .../runtime/invocation/next);
an invocation runs from the moment the proxy hands the runtime its event to the
moment the runtime posts the answer (.../response or .../error). The proxy records
those times and calls `on_init_done` while it holds the first request for an event,
so a caller can, for example, cap the runtime's CPU before it runs any invocation.

With `snap_start=True` it also plays Lambda's side of a SnapStart restore: the
emulator has no `/runtime/restore/next`, so the proxy answers it at once (as a
restore of the snapshot just taken would, the process itself is not frozen),
calling `on_restore` first and noting the time.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NEXT_PATH = "/2018-06-01/runtime/invocation/next"
RESTORE_NEXT_PATH = "/2018-06-01/runtime/restore/next"
_ANSWER_SUFFIXES = ("/response", "/error")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


@dataclass
class PhaseTimes:
    """time.monotonic() marks of one runtime process, as the proxy saw them."""

    init_done: float | None = None
    restore_asked: float | None = None
    event_handed: list[float] = field(default_factory=list)
    answer_posted: list[float] = field(default_factory=list)

    def invocation_ms(self) -> list[float]:
        """Each finished invocation's duration (event handed over -> answer posted), in ms."""
        return [(posted - handed) * 1000 for handed, posted in zip(self.event_handed, self.answer_posted, strict=False)]


class RuntimeApiProxy:
    def __init__(
        self,
        on_init_done: Callable[[], None] | None = None,
        *,
        snap_start: bool = False,
        on_restore: Callable[[], None] | None = None,
    ) -> None:
        self.on_init_done = on_init_done
        self.snap_start = snap_start
        self.on_restore = on_restore
        self.upstream_port = 0
        self._running = False
        self.times = PhaseTimes()
        self.hook_error: BaseException | None = None
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="runtime-api-proxy", daemon=True)

    @property
    def address(self) -> str:
        """host:port, the form AWS_LAMBDA_RUNTIME_API takes."""
        return f"127.0.0.1:{self._server.server_address[1]}"

    def start(self, upstream_port: int) -> RuntimeApiProxy:
        self.upstream_port = upstream_port
        self._thread.start()
        self._running = True
        return self

    def stop(self) -> None:
        if self._running:
            self._running = False
            self._server.shutdown()
            self._server.server_close()

    def _init_done(self) -> None:
        with self._lock:
            first = self.times.init_done is None
            if first:
                self.times.init_done = time.monotonic()
        if first:
            self._call(self.on_init_done)

    def _call(self, hook: Callable[[], None] | None) -> None:
        if hook is None:
            return
        try:
            hook()
        except Exception as exc:  # kept for the caller: a hook that fails must not hang the runtime
            self.hook_error = exc

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Without it, Nagle's algorithm and the runtime's delayed ACK add ~40 ms to every answer.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _forward(self, method: str) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if method == "GET" and self.path == NEXT_PATH:
                    proxy._init_done()
                if method == "POST" and self.path.endswith(_ANSWER_SUFFIXES):
                    proxy.times.answer_posted.append(time.monotonic())
                if self.path == RESTORE_NEXT_PATH and proxy.snap_start:
                    proxy.times.restore_asked = time.monotonic()
                    proxy._call(proxy.on_restore)
                    self._reply(200, b"", {})
                    return
                upstream = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                    upstream.request(method, self.path, body=body or None, headers=headers)
                    answer = upstream.getresponse()
                    payload = answer.read()
                    reply_headers = {k: v for k, v in answer.getheaders() if k.lower() not in _HOP_BY_HOP}
                except (OSError, http.client.HTTPException):
                    self.close_connection = True  # the emulator went away (stopped): so does the runtime
                    return
                finally:
                    upstream.close()
                if method == "GET" and self.path == NEXT_PATH and answer.status == 200:
                    proxy.times.event_handed.append(time.monotonic())
                self._reply(answer.status, payload, reply_headers)

            def _reply(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
                self.send_response_only(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self._headers_buffer.append(b"\r\n" + payload)
                self.flush_headers()  # status, headers and body in one write

            def do_GET(self) -> None:
                self._forward("GET")

            def do_POST(self) -> None:
                self._forward("POST")

        return Handler
