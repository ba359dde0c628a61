"""The mint's domain errors and the HTTP answer each one maps to.

Every message here may reach a caller or a log: none may contain a secret,
a token, an API key or a raw identity.
"""

from __future__ import annotations


class TokenServiceError(Exception):
    """An error with a contract answer: HTTP status, error code, message for a person."""

    status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def headers(self) -> dict[str, str]:
        return {}


class InvalidRequest(TokenServiceError):
    status = 400
    code = "invalid_request"


class Unauthenticated(TokenServiceError):
    status = 401
    code = "unauthenticated"


class EmailNotVerified(TokenServiceError):
    status = 403
    code = "email_not_verified"


class CallerNotAllowed(TokenServiceError):
    status = 403
    code = "caller_not_allowed"


class NotFound(TokenServiceError):
    status = 404
    code = "not_found"


class MethodNotAllowed(TokenServiceError):
    status = 405
    code = "method_not_allowed"

    def __init__(self, message: str, allowed_methods: tuple[str, ...]) -> None:
        super().__init__(message)
        self.allowed_methods = allowed_methods

    @property
    def headers(self) -> dict[str, str]:
        return {"Allow": ", ".join(self.allowed_methods)}


class SigningSecretUnavailable(TokenServiceError):
    """No usable signing secret: never provisioned, empty, or unreadable with nothing cached."""

    status = 503
    code = "signing_secret_unavailable"

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)}


class InternalError(TokenServiceError):
    status = 500
    code = "internal_error"
