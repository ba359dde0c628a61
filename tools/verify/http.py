"""The few HTTP requests verify sends to the token API: answers of any status, never an exception for one."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

TIMEOUT_SECONDS = 15.0


class ApiUnreachable(Exception):
    """The API did not answer at all (DNS, refused connection, TLS, timeout)."""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def header_items(self, name: str) -> set[str]:
        """A comma-separated header's items, in lower case."""
        return {item.strip().lower() for item in self.headers.get(name, "").split(",") if item.strip()}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirect is an answer to report, not to follow with an Authorization header


_OPENER = urllib.request.build_opener(_NoRedirect)


def send(method: str, url: str, headers: dict[str, str] | None = None, body: bytes | None = None) -> Answer:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})  # noqa: S310 (ApiUrl: https or loopback)
    try:
        with _OPENER.open(request, timeout=TIMEOUT_SECONDS) as response:
            return Answer(response.status, {k.lower(): v for k, v in response.headers.items()}, response.read())
    except urllib.error.HTTPError as error:
        with error:
            return Answer(error.code, {k.lower(): v for k, v in error.headers.items()}, error.read())
    except (TimeoutError, urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise ApiUnreachable(f"{method} {url} got no answer ({reason or type(error).__name__})") from None
