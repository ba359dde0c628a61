"""Which IAM callers may use POST /server/token: the caller's ARN against SERVER_TOKEN_CALLERS.

Pure: no I/O, no environment. API Gateway has already checked the SigV4
signature and execute-api:Invoke; this is the stack's own allowlist on top, so a
principal with a broad policy (AdministratorAccess, AmazonAPIGatewayInvokeFullAccess)
cannot mint tokens for any customer unless the operator named it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# arn:PARTITION:sts::ACCOUNT:assumed-role/ROLE_NAME/SESSION_NAME (the role's path is not in it)
_ASSUMED_ROLE = re.compile(r"^arn:(aws[a-z-]*):sts::([0-9]{12}):assumed-role/([^/]+)/[^/]+$")
# arn:PARTITION:iam::ACCOUNT:role/PATH/ROLE_NAME
_ROLE = re.compile(r"^arn:(aws[a-z-]*):iam::([0-9]{12}):role/(?:.*/)?([^/]+)$")


def _same_role(assumed_role_arn: str, role_arn: str) -> bool:
    session = _ASSUMED_ROLE.match(assumed_role_arn)
    role = _ROLE.match(role_arn)
    return bool(session and role and session.groups() == role.groups())


def caller_allowed(caller_arn: object, allowed: Iterable[str]) -> bool:
    """True when the caller is a listed user or role, or a session of a listed role (same partition and account)."""
    if not isinstance(caller_arn, str) or not caller_arn:
        return False
    return any(caller_arn == arn or _same_role(caller_arn, arn) for arn in allowed)
