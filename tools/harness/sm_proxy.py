"""A proxy on loopback in front of the local Secrets Manager: IAM role check, a record of calls, injected faults.

Point AWS_ENDPOINT_URL_SECRETS_MANAGER at it; it forwards every request to
moto unchanged and counts them by the X-Amz-Target header
("secretsmanager.GetSecretValue" -> "GetSecretValue"). With a RoleCheck it
first identifies the caller by the access key id of its SigV4 Authorization
header and answers what IAM would (AccessDeniedException, HTTP 400) unless the
caller's role allows the action on the secret; every decision is logged in
`decisions`. Every request is kept in `records` (operation, request body, role,
what the proxy did with it), so a test can say which calls were made and which
one a fault reached.

Faults, until `heal()`:
- `fail_with(fault)`: every request is answered with the fault (an AWS error, a 5xx, or a hang);
- `fail(fault, operation=..., call=n)`: only that operation, or only its n-th call from now,
  fails; every other request passes. With `after_forwarding=True` the request reaches
  Secrets Manager first and only its answer is replaced: a write that landed, whose
  answer was lost (the SDK then retries it).
"""

from __future__ import annotations

import http.client
import json
import re
import threading
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from tools.harness.iam import ADMIN_ACCESS_KEY_ID, RoleCheck, UnknownCaller, UnsupportedPolicy
from tools.harness.loopback import Exchange, LoopbackServer
from tools.harness.template import ACCOUNT_ID, REGION

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
# Operations that name no secret: IAM checks them against the resource "*".
_NO_RESOURCE = ("ListSecrets", "GetRandomPassword")
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([a-z0-9-]+)/")


FORWARDED = "forwarded"
DENIED = "denied"


@dataclass(frozen=True)
class SecretsManagerCall:
    """One request that reached the proxy and what the proxy did with it.

    `outcome` is FORWARDED (Secrets Manager answered), DENIED (the role check refused it), or
    the name of the fault that answered it (after Secrets Manager saw it when `applied`).
    """

    seq: int
    operation: str
    role: str | None
    outcome: str
    applied: bool
    request: Mapping[str, Any] = field(repr=False)

    @property
    def secret_id(self) -> str | None:
        value = self.request.get("SecretId")
        return value if isinstance(value, str) else None

    @property
    def secret_string(self) -> str | None:
        """What a PutSecretValue would store (kept out of repr: it is a secret)."""
        value = self.request.get("SecretString")
        return value if isinstance(value, str) else None

    @property
    def faulted(self) -> bool:
        return self.outcome not in (FORWARDED, DENIED)


@dataclass
class _FaultRule:
    fault: str
    operation: str | None
    call: int | None
    after_forwarding: bool
    seen: int = 0

    def fires(self, operation: str) -> bool:
        """Counts a request this rule watches; True when the fault answers it."""
        if self.operation is not None and operation != self.operation:
            return False
        self.seen += 1
        return self.call is None or self.seen == self.call


@dataclass(frozen=True)
class RoleDecision:
    """One request of a role session, as the role check decided it."""

    role: str
    action: str
    resource: str
    allowed: bool


class SecretsManagerProxy(LoopbackServer):
    name = "sm-proxy"

    def __init__(self, upstream_url: str, role_check: RoleCheck | None = None) -> None:
        upstream = urlsplit(upstream_url)
        self._upstream = (upstream.hostname or "127.0.0.1", upstream.port or 80)
        self.calls: Counter[str] = Counter()
        self.decisions: list[RoleDecision] = []
        # Bounded, so `make serve` can run for hours; tests read a few hundred at most.
        self._records: deque[SecretsManagerCall] = deque(maxlen=10_000)
        self._next_seq = 0
        self._arns: dict[str, str] = {}
        self._lock = threading.Lock()
        self.role_check = role_check
        self._rules: list[_FaultRule] = []
        super().__init__()

    def fail_with(self, fault: str) -> None:
        """Answer every request with this fault (a key of FAULTS, or "timeout" to hang)."""
        self.fail(fault)

    def fail(
        self, fault: str, *, operation: str | None = None, call: int | None = None, after_forwarding: bool = False
    ) -> None:
        """Answer with this fault the requests of `operation` (any when None), or only its `call`-th one
        from now (1-based); every other request passes. `after_forwarding`: Secrets Manager gets the
        request first, and only its answer is replaced by the fault. Several rules: the first that fires answers.
        """
        if fault != HANG and fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}")
        if call is not None and call < 1:
            raise ValueError("call counts from 1")
        with self._lock:
            self.released.clear()
            self._rules.append(_FaultRule(fault, operation, call, after_forwarding))

    def heal(self) -> None:
        with self._lock:
            self._rules.clear()
        self.released.set()

    def count(self, operation: str) -> int:
        with self._lock:
            return self.calls[operation]

    def mark(self) -> int:
        """A point in the record: `records(since=mark)` returns what came after it."""
        with self._lock:
            return self._next_seq

    def records(self, *, since: int = 0, operation: str | None = None) -> list[SecretsManagerCall]:
        """The requests the proxy got, oldest first (the last 10,000)."""
        with self._lock:
            return [
                record
                for record in self._records
                if record.seq >= since and (operation is None or record.operation == operation)
            ]

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.decisions.clear()
            self._records.clear()
            self._arns.clear()

    @property
    def role_check(self) -> RoleCheck | None:
        return self._role_check

    @role_check.setter
    def role_check(self, check: RoleCheck | None) -> None:
        """Installs a role check that resolves secret ids through this proxy's Secrets Manager."""
        if check is not None:
            check.resolve_arn = self.secret_arn
        self._role_check = check

    def role_calls(self, *, allowed: bool | None = None) -> list[RoleDecision]:
        with self._lock:
            return [d for d in self.decisions if allowed is None or d.allowed == allowed]

    def secret_arn(self, secret_id: str) -> str:
        """The ARN of the secret a name, partial or full ARN names; for a missing secret, the ARN it would have."""
        with self._lock:
            known = self._arns.get(secret_id)
        if known:
            return known
        status, answer = self._admin_call("DescribeSecret", {"SecretId": secret_id})
        if status != 200:
            return (
                secret_id
                if secret_id.startswith("arn:")
                else f"arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:{secret_id}"
            )
        with self._lock:
            self._arns[secret_id] = str(answer["ARN"])
        return str(answer["ARN"])

    def _admin_call(self, operation: str, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        body = json.dumps(request).encode()
        # moto reads the region (and so the backend) from the credential scope.
        authorization = (
            f"AWS4-HMAC-SHA256 Credential={ADMIN_ACCESS_KEY_ID}/20240101/{REGION}/secretsmanager/aws4_request, "
            "SignedHeaders=host, Signature=0"
        )
        headers = {
            "X-Amz-Target": f"secretsmanager.{operation}",
            "Content-Type": "application/x-amz-json-1.1",
            "Authorization": authorization,
        }
        upstream = http.client.HTTPConnection(*self._upstream, timeout=30)
        try:
            upstream.request("POST", "/", body=body, headers=headers)
            answer = upstream.getresponse()
            return answer.status, json.loads(answer.read() or b"{}")
        finally:
            upstream.close()

    def _record(self, operation: str, role: str | None, outcome: str, applied: bool, body: bytes) -> None:
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            request = {}
        with self._lock:
            self._records.append(
                SecretsManagerCall(
                    self._next_seq, operation, role, outcome, applied, request if isinstance(request, dict) else {}
                )
            )
            self._next_seq += 1

    def _fault_for(self, operation: str) -> _FaultRule | None:
        with self._lock:
            return next((rule for rule in self._rules if rule.fires(operation)), None)

    def _role(self, authorization: str) -> str | None:
        check = self._role_check
        credential = _CREDENTIAL.search(authorization)
        try:
            caller = check.caller(credential.group(1) if credential else "") if check is not None else None
        except UnknownCaller:
            return None
        return caller.role if caller is not None else None

    def _refusal(self, authorization: str, operation: str, body: bytes) -> tuple[int, str, str] | None:
        """What IAM answers this request instead of Secrets Manager, or None when it may go on."""
        check = self._role_check
        if check is None:
            return None
        credential = _CREDENTIAL.search(authorization)
        try:
            caller = check.caller(credential.group(1) if credential else "")
        except UnknownCaller:
            return 400, "UnrecognizedClientException", "The security token included in the request is invalid."
        if caller is None:
            return None
        action = f"secretsmanager:{operation}"
        try:
            secret_id = json.loads(body or b"{}").get("SecretId")
            if secret_id is None and operation not in _NO_RESOURCE:
                raise UnsupportedPolicy(f"the role check does not know which resource {operation} acts on")
            resource = "*" if secret_id is None else self.secret_arn(str(secret_id))
            decision = check.decide(caller, action, resource)
        except (UnsupportedPolicy, KeyError, ValueError) as exc:
            # Loud on purpose: the test fails naming what the check cannot evaluate or resolve.
            return 400, "RoleCheckUnsupported", f"{type(exc).__name__}: {exc}"
        with self._lock:
            self.decisions.append(RoleDecision(caller.role, action, resource, decision.allowed))
        return None if decision.allowed else (400, "AccessDeniedException", decision.message)

    def handle(self, exchange: Exchange) -> None:
        body = exchange.body
        operation = (exchange.header("X-Amz-Target") or "unknown").rsplit(".", 1)[-1]
        with self._lock:
            self.calls[operation] += 1
        authorization = exchange.header("Authorization") or ""
        role = self._role(authorization)
        refusal = self._refusal(authorization, operation, body)
        if refusal is not None:
            self._record(operation, role, DENIED, False, body)
            _send_error(exchange, *refusal)
            return
        rule = self._fault_for(operation)
        if rule is None:
            self._record(operation, role, FORWARDED, True, body)
            exchange.reply(*self._forward(exchange))
            return
        if rule.after_forwarding:
            self._forward(exchange)  # Secrets Manager acts on it; its answer is lost
        self._record(operation, role, rule.fault, rule.after_forwarding, body)
        if rule.fault == HANG:
            exchange.hold(self, 60)
        else:
            _send_error(exchange, *FAULTS[rule.fault])

    def _forward(self, exchange: Exchange) -> tuple[int, bytes, list[tuple[str, str]]]:
        upstream = http.client.HTTPConnection(*self._upstream, timeout=30)
        try:
            headers = {k: v for k, v in exchange.headers.items() if k.lower() != "host"}
            upstream.request("POST", exchange.target, body=exchange.body, headers=headers)
            answer = upstream.getresponse()
            return answer.status, answer.read(), answer.getheaders()
        finally:
            upstream.close()


def _send_error(exchange: Exchange, status: int, code: str, message: str) -> None:
    """An AWS JSON-protocol error, as Secrets Manager (or IAM in front of it) answers."""
    payload = json.dumps({"__type": code, "message": message}).encode()
    exchange.reply(status, payload, {"Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": code})
