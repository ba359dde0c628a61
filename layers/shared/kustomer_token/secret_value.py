"""The rule for a signing-secret value that can sign tokens: pure, shared by the mint and the refresher.

No I/O, no logging, no third-party import: the refresher checks Kustomer's answer with it before
writing, and the mint checks what it read before signing, without either loading the other's code.
"""

from __future__ import annotations

MAX_SECRET_BYTES = 4096


def secret_problem(value: object) -> str | None:
    """Why a stored value cannot sign tokens, or None when it can."""
    if isinstance(value, bytes):
        return "is binary (SecretBinary); store the secret as SecretString"
    if not isinstance(value, str) or not value:
        return "is empty"
    if value != value.strip():
        return "has leading or trailing whitespace; store the secret exactly as Kustomer gives it"
    if len(value.encode("utf-8")) > MAX_SECRET_BYTES:
        return f"is longer than {MAX_SECRET_BYTES} bytes"
    return None
