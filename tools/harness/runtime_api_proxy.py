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

from tools.harness.loopback import Exchange, LoopbackServer

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


class RuntimeApiProxy(LoopbackServer):
    """Set `upstream_port` (the emulator's Runtime API) before `start()`; point the runtime at `address`."""

    name = "runtime-api-proxy"

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
        self.times = PhaseTimes()
        self.hook_error: BaseException | None = None
        self._lock = threading.Lock()
        super().__init__()

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

    def handle(self, exchange: Exchange) -> None:
        method, path, body = exchange.method, exchange.target, exchange.body
        if method == "GET" and path == NEXT_PATH:
            self._init_done()
        if method == "POST" and path.endswith(_ANSWER_SUFFIXES):
            self.times.answer_posted.append(time.monotonic())
        if path == RESTORE_NEXT_PATH and self.snap_start:
            self.times.restore_asked = time.monotonic()
            self._call(self.on_restore)
            exchange.reply(200)
            return
        upstream = http.client.HTTPConnection("127.0.0.1", self.upstream_port)
        try:
            headers = {k: v for k, v in exchange.headers.items() if k.lower() not in _HOP_BY_HOP}
            upstream.request(method, path, body=body or None, headers=headers)
            answer = upstream.getresponse()
            payload = answer.read()
            reply_headers = [(k, v) for k, v in answer.getheaders() if k.lower() not in _HOP_BY_HOP]
        except (OSError, http.client.HTTPException):
            exchange.drop()  # the emulator went away (stopped): so does the runtime
            return
        finally:
            upstream.close()
        if method == "GET" and path == NEXT_PATH and answer.status == 200:
            self.times.event_handed.append(time.monotonic())
        exchange.reply(answer.status, payload, reply_headers)
