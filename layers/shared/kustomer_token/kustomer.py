"""The client of Kustomer's chat settings endpoint: reads the org's signing secret.

GET {base}/v1/auth/customer/settings with the API key as a Bearer token.
Timeouts, bounded retries with backoff and jitter (urllib3's Retry, which also
honours Retry-After), an overall deadline, a cap on the answer's size, and a
strict check of the value. Every error says what to do and never holds the
API key, the secret or the answer's body.
"""

from __future__ import annotations

import json
import math
import re
import time
from typing import Any, Self

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)
from urllib3.util import Retry, Timeout

from kustomer_token import __version__
from kustomer_token.secret_value import secret_problem

SETTINGS_PATH = "/v1/auth/customer/settings"
MAX_ANSWER_BYTES = 64 * 1024
USER_AGENT = f"kustomer-chat-token/{__version__} (python; urllib3)"
_POD_MISMATCH = re.compile(
    r"associated with pod\s+([a-z0-9-]{1,20})\s+but request is being handled by\s+([a-z0-9-]{1,20})", re.I
)


class KustomerError(Exception):
    """Reading the secret from Kustomer failed; `reason` is a short metric dimension."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class _DeadlineExceeded(Exception):
    def __init__(self, last_error: BaseException | None) -> None:
        super().__init__("deadline")
        self.last_error = last_error


class DeadlineRetry(Retry):
    """urllib3's Retry that stops before an overall deadline, reads x-ratelimit-reset on a 429, and sleeps
    exactly the wait it held against the deadline."""

    def __init__(self, *args: Any, deadline: float = math.inf, attempt_seconds: float = 0.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.deadline = deadline
        self.attempt_seconds = attempt_seconds
        # The pause before the next attempt, set by increment(): urllib3's own sleep would draw the jitter again.
        self.wait = 0.0

    def new(self, **kwargs: Any) -> Self:
        retry = super().new(**kwargs)
        retry.deadline = self.deadline
        retry.attempt_seconds = self.attempt_seconds
        return retry

    def get_retry_after(self, response: Any) -> float | None:
        retry_after = super().get_retry_after(response)
        # x-ratelimit-reset is the end of a rate window: a 502 or 503 that carries it says nothing about the server.
        if retry_after is not None or response.status != 429:
            return retry_after
        reset = response.headers.get("x-ratelimit-reset")
        if reset is None or not re.fullmatch(r"\s*[0-9]+(\.[0-9]+)?\s*", reset):
            return None
        seconds = float(reset)
        # Seen both as seconds to wait and as a Unix time: a value past 2001 is a time.
        if seconds > 1_000_000_000:
            seconds -= time.time()
        return min(max(seconds, 0.0), self.retry_after_max)

    def increment(self, *args: Any, **kwargs: Any) -> Self:
        retry = super().increment(*args, **kwargs)
        response = kwargs.get("response")
        retry_after = None
        if response is not None and self.respect_retry_after_header:
            retry_after = retry.get_retry_after(response)
        # As urllib3 does: a wait the server asks for replaces the back-off (and its jitter, drawn here once).
        retry.wait = retry_after if retry_after else retry.get_backoff_time()
        if time.monotonic() + retry.wait + self.attempt_seconds > self.deadline:
            stop = _DeadlineExceeded(kwargs.get("error"))
            raise MaxRetryError(kwargs.get("_pool"), kwargs.get("url"), stop)  # type: ignore[arg-type]
        return retry

    def sleep(self, response: Any = None) -> None:
        if self.wait > 0:
            time.sleep(self.wait)


class KustomerSettingsClient:
    """Reads the chat signing secret of one Kustomer org."""

    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout: float = 3.0,
        read_timeout: float = 5.0,
        max_retries: int = 3,
        backoff_factor: float = 0.5,
        pool: urllib3.PoolManager | None = None,
    ) -> None:
        self._url = base_url.rstrip("/") + SETTINGS_PATH
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._max_retries = max_retries
        self._backoff_factor = backoff_factor
        self._pool = pool or urllib3.PoolManager(num_pools=1, maxsize=1)

    @property
    def url(self) -> str:
        return self._url

    def fetch_signing_secret(self, api_key: str, *, deadline: float) -> str:
        """The org's chat signing secret, or KustomerError. `deadline` is a time.monotonic() value."""
        budget = deadline - time.monotonic()
        if budget <= 0:
            raise KustomerError("no time left to call Kustomer: raise the function's timeout", "Deadline")
        timeout = Timeout(
            connect=min(self._connect_timeout, budget),
            read=min(self._read_timeout, budget),
            total=budget,
        )
        retries = DeadlineRetry(
            total=self._max_retries,
            connect=self._max_retries,
            read=self._max_retries,
            status=self._max_retries,
            other=0,
            redirect=0,
            allowed_methods=frozenset({"GET"}),
            status_forcelist=frozenset({429, 500, 502, 503, 504}),
            backoff_factor=self._backoff_factor,
            backoff_jitter=self._backoff_factor,
            backoff_max=8.0,
            retry_after_max=30.0,
            raise_on_status=False,
            raise_on_redirect=False,
            deadline=deadline,
            attempt_seconds=min(self._connect_timeout + self._read_timeout, budget),
        )
        try:
            response = self._pool.request(
                "GET",
                self._url,
                headers={
                    "Authorization": f"Bearer {api_key}",
                    "Accept": "application/json",
                    "User-Agent": USER_AGENT,
                },
                timeout=timeout,
                retries=retries,
                redirect=False,
                preload_content=False,
            )
        except MaxRetryError as exc:
            raise self._transport_error(exc.reason) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._transport_error(exc) from None
        try:
            body = response.read(MAX_ANSWER_BYTES + 1, decode_content=True)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._transport_error(exc) from None
        finally:
            response.release_conn()
        # urllib3's Retry is immutable: the response carries the last one, with every earlier attempt in its history.
        final_retries = response.retries if isinstance(response.retries, Retry) else retries
        return self._secret_from_answer(response.status, body, attempts=len(final_retries.history) + 1)

    def _transport_error(self, cause: BaseException | None) -> KustomerError:
        if isinstance(cause, _DeadlineExceeded):
            # The deadline stopped a retry: what failed is what made it retry. (A status that would be
            # retried never gets here: urllib3 returns its last answer instead, raise_on_status being off.)
            cause = cause.last_error
        # urllib3's NewConnectionError (refused, or a name that does not resolve) is a ConnectTimeoutError
        # for compatibility's sake: it is no timeout.
        timed_out = isinstance(cause, (ReadTimeoutError, ConnectTimeoutError, TimeoutError))
        if timed_out and not isinstance(cause, NewConnectionError):
            return KustomerError(
                f"Kustomer did not answer {self._url} in time; it will be tried again on the next run", "Timeout"
            )
        if isinstance(cause, ProtocolError):
            return KustomerError(f"the connection to {self._url} broke off; it will be tried again", "Unreachable")
        return KustomerError(
            f"could not reach Kustomer at {self._url} ({type(cause).__name__}): check the org name or "
            "KUSTOMER_API_BASE_URL and the function's internet access",
            "Unreachable",
        )

    def _secret_from_answer(self, status: int, body: bytes, *, attempts: int) -> str:
        if status != 200:
            raise self._status_error(status, body, attempts)
        if len(body) > MAX_ANSWER_BYTES:
            raise KustomerError(
                f"Kustomer's settings answer is larger than {MAX_ANSWER_BYTES // 1024} KiB; refusing it", "BadAnswer"
            )
        try:
            answer = json.loads(body.decode("utf-8"))
        except ValueError:
            raise KustomerError(
                "Kustomer's settings answer is not JSON (a proxy or login page?); check KUSTOMER_API_BASE_URL",
                "BadAnswer",
            ) from None
        secret = _find_secret(answer)
        if secret is _MISSING:
            raise KustomerError(
                "Kustomer's settings answer has no attributes.secret: is chat authentication set up for this org?",
                "BadAnswer",
            )
        problem = "is not a string" if not isinstance(secret, str) else secret_problem(secret)
        if problem:
            raise KustomerError(f"the secret in Kustomer's settings answer {problem}; nothing was stored", "BadAnswer")
        return str(secret)

    def _status_error(self, status: int, body: bytes, attempts: int) -> KustomerError:
        pods = _POD_MISMATCH.search(body[:4096].decode("utf-8", "replace"))
        if pods:
            key_pod, serving_pod = pods.group(1).lower(), pods.group(2).lower()
            return KustomerError(
                f"the Kustomer API key belongs to pod {key_pod} but {self._url} is served by pod {serving_pod}: "
                f"set KUSTOMER_API_BASE_URL (the KustomerApiBaseUrl parameter) to https://api.{key_pod}.kustomerapp.com",
                "WrongPod",
            )
        if status == 401:
            return KustomerError(
                "Kustomer rejected the API key (401): store a valid key with the org.admin and org.user roles "
                "in the API key secret",
                "Unauthorized",
            )
        if status == 403:
            return KustomerError(
                "the Kustomer API key may not read the chat settings (403): give it the org.admin and org.user roles",
                "Forbidden",
            )
        if status == 404:
            return KustomerError(
                f"Kustomer answered 404 for {self._url}: check the org name (KUSTOMER_ORG) or KUSTOMER_API_BASE_URL",
                "NotFound",
            )
        if status == 429:
            return KustomerError(
                f"Kustomer is rate-limiting this org (429) after {attempts} attempts; the next run will try again. "
                "Other integrations sharing the org's API quota may be using it up",
                "RateLimited",
            )
        if status >= 500:
            return KustomerError(
                f"Kustomer answered {status} after {attempts} attempts; the next run will try again", "ServerError"
            )
        return KustomerError(f"Kustomer answered an unexpected {status}; nothing was stored", "UnexpectedStatus")


_MISSING = object()


def _find_secret(answer: object) -> object:
    """attributes.secret under data (JSON:API), or at the top level."""
    if not isinstance(answer, dict):
        return _MISSING
    for container in (answer.get("data"), answer):
        if isinstance(container, dict):
            attributes = container.get("attributes")
            if isinstance(attributes, dict) and "secret" in attributes:
                return attributes["secret"]
    return _MISSING
