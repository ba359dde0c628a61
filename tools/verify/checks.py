"""The checks of `make verify`, the same against AWS and against the local stack.

Each check looks at the stack through `Facts` (tools.verify.facts) and answers one Result. They only
read: HTTP requests to the token API (one of them mints a token for a made-up back-end identity and
looks at its shape), Describe/List/Get calls that return no secret value. A check that cannot run
where it is asked to (no stand-in locally, no identity-provider token) says SKIP and why.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from tools.verify.facts import Facts, FunctionConfig, StackRefused
from tools.verify.http import Answer, ApiUnreachable, send
from tools.verify.report import DEPLOY, OPERATIONS, VERIFY, Result, Status

# The CORS configuration template.yaml gives TokenApi (tests/runtime/verify checks these against the template).
CORS_METHODS = ("POST", "OPTIONS")
CORS_HEADERS = ("authorization", "content-type")
CORS_EXPOSED = ("retry-after",)
UNLISTED_ORIGIN = "https://verify.invalid"  # .invalid never resolves (RFC 6761): no real site can be it
KUSTOMER_HEADER = b'{"alg":"HS256","typ":"JWT"}'
TOKEN_LIFETIME_SECONDS = 900
IAT_TOLERANCE_SECONDS = 60
# A rotation's AWSPENDING younger than this plus the schedule's interval is a rotation still running: the
# refresher withdraws an abandoned one only in a successful scheduled run, once it is over 10 minutes old.
PENDING_WITHDRAWN_AFTER = timedelta(minutes=10)
DEFAULT_SCHEDULE_INTERVAL = timedelta(minutes=15)  # the template's RefreshSchedule default, rate(15 minutes)
CRON_SCHEDULE_INTERVAL = timedelta(hours=1)  # a cron expression's interval is not read: a safe upper guess
DEFAULT_HEARTBEAT = timedelta(seconds=3600)  # RefreshHeartbeatSeconds auto
SERVER_TOKEN_PROBE = {"externalId": "kustomer-chat-token-verify"}  # a made-up back-end identity
METRICS_NAMESPACE = "KustomerChatToken"
REFRESH_PERIOD_SECONDS = 60  # the refresher's runs minute by minute: a failure and its retry's success apart
FIRST_RUN_GRACE = timedelta(minutes=20)  # a new stack's first scheduled run and its metrics
METRIC_LOOKBACK = timedelta(hours=24)  # an alarm's metric with no sample in this long is "no data yet"
ROUTE_DIMENSIONS = ("Method", "Resource")  # API Gateway's route-level dimensions (DetailedMetricsEnabled)
AFTER_DEPLOY_ALARMS = timedelta(hours=1)
# The alarms a first deploy fires until the API key is stored and the signing secret fetched (docs/deploy.md).
FIRST_DEPLOY_ALARMS = {"RefreshErrorsAlarm", "RefreshHeartbeatAlarm", "RefreshDeadLetterAlarm"}
USABLE_STATES = ("CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE")
# The stack works, on the template before a change that rolled back (the line says so).
ROLLED_BACK_STATES = (
    "UPDATE_ROLLBACK_COMPLETE",
    "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS",
    "IMPORT_ROLLBACK_COMPLETE",
)
# The update is done and works; CloudFormation is deleting the resources it replaced.
CLEANING_UP_STATES = ("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",)
BEING_CREATED_STATES = ("CREATE_IN_PROGRESS", "REVIEW_IN_PROGRESS")
_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_RATE_UNITS = {"minute": 60, "hour": 3600, "day": 86400}


def schedule_interval(expression: str | None) -> tuple[timedelta, str]:
    """How often RefreshSchedule runs the refresher, and how that was found (for the line)."""
    if not expression:
        return DEFAULT_SCHEDULE_INTERVAL, "RefreshSchedule's default rate(15 minutes)"
    found = _RATE.match(expression.strip())
    if found:
        seconds = int(found.group(1)) * _RATE_UNITS[found.group(2).rstrip("s")]
        return timedelta(seconds=seconds), f"RefreshSchedule {expression.strip()}"
    return CRON_SCHEDULE_INTERVAL, f"RefreshSchedule {expression.strip()} is not a rate(): taken as hourly"


def heartbeat_window(value: str | None) -> timedelta:
    """RefreshHeartbeatSeconds as the template reads it: auto (its default) is 3600 seconds."""
    if not value or value.strip() == "auto":
        return DEFAULT_HEARTBEAT
    try:
        seconds = int(value.strip())
    except ValueError:
        return DEFAULT_HEARTBEAT  # a value the template refuses: the heartbeat's default window
    return timedelta(seconds=seconds) if seconds > 0 else DEFAULT_HEARTBEAT


class Fail(Exception):
    def __init__(self, summary: str, advice: str) -> None:
        super().__init__(summary)
        self.summary = summary
        self.advice = advice


class Skip(Exception):
    pass


def _ops(section: str) -> str:
    return f"{OPERATIONS}#{section.lower()}"


def _verify_doc(check: str) -> str:
    return f"{VERIFY}#{check}"


def _see(check: str) -> str:
    return f"({VERIFY}#{check})"


AFTER_FIRST_DEPLOY = f"{DEPLOY}#after-the-first-deploy"
RUNNING_CODE = f"{DEPLOY}#what-an-update-changes-in-the-running-code"
STUCK_ROTATION = _ops("a-rotation-that-never-finished-blocks-rotate-secret")


@dataclass
class Run:
    """One verify run: the facts and what earlier checks learnt (the API's reachability)."""

    facts: Facts
    api_down: str | None = None
    answers: dict[str, Answer] = field(default_factory=dict)
    alarms: dict[str, dict[str, Any]] | None = None  # DescribeAlarms, read once by the alarm checks

    @property
    def api_url(self) -> str:
        return self.facts.stack.outputs["ApiUrl"].rstrip("/")

    @property
    def origins(self) -> list[str]:
        return [origin for origin in self.facts.stack.parameters.get("AllowedOrigins", "").split(",") if origin]

    def http(self, method: str, path: str, headers: dict[str, str], body: bytes | None = None) -> Answer:
        if self.api_down is not None:
            raise Skip(f"the API did not answer (check api): {self.api_down}")
        return send(method, self.api_url + path, headers, body)

    def client(self, service: str) -> Any:
        client = self.facts.client(service)
        if client is None:
            raise Skip(f"no {service} here")
        return client

    def output(self, name: str) -> str:
        value = self.facts.stack.outputs.get(name)
        if not value:
            raise Fail(
                f"the stack has no {name} output", f"update the stack with this release's template ({DEPLOY}#outputs)"
            )
        return value


Check = Callable[[Run], str]  # returns the PASS summary; raises Fail or Skip


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "never"


def _ago(run: Run, moment: datetime) -> str:
    seconds = int((run.facts.now() - moment).total_seconds())
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    if seconds < 172800:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} days ago"


# --- the stack -------------------------------------------------------------------------------------------


def check_stack(run: Run) -> str:
    stack = run.facts.stack
    version = stack.outputs.get("Version", "?")
    seen = (
        f"{stack.name} is {stack.status}, kustomer-chat-token {version}, last changed {_ago(run, stack.last_changed)}"
    )
    if stack.status in USABLE_STATES:
        return seen
    if stack.status in CLEANING_UP_STATES:
        return f"{seen}; the update is done, CloudFormation is deleting the resources it replaced"
    if stack.status in ROLLED_BACK_STATES:
        # A change that failed and rolled back: the stack works, on the template of before that change.
        return f"{seen}; the last change rolled back, so it runs the template before that change"
    reason = f" ({stack.status_reason})" if stack.status_reason else ""
    if stack.status in BEING_CREATED_STATES:
        raise Fail(
            f"{seen}{reason}: it is still being created", "run verify when it is CREATE_COMPLETE " + _see("stack")
        )
    if stack.status.endswith("_IN_PROGRESS"):
        raise Fail(f"{seen}{reason}: it is still changing", "run verify again once the stack operation ends")
    raise Fail(
        f"{seen}{reason}",
        "read the stack's events for the first failed resource; a stack whose first create failed "
        f"(ROLLBACK_COMPLETE) must be deleted and deployed again {_see('stack')}",
    )


def stack_unusable(facts: Facts) -> str | None:
    """Why the other checks cannot run on this stack (a failed create, a change in progress), or None."""
    status = facts.stack.status
    if status in USABLE_STATES or status in ROLLED_BACK_STATES or status in CLEANING_UP_STATES:
        return None
    return f"the stack is {status} (check stack)"


# --- the API ---------------------------------------------------------------------------------------------


def check_api(run: Run) -> str:
    try:
        answer = send(
            "OPTIONS", run.api_url + "/token", {"Origin": UNLISTED_ORIGIN, "Access-Control-Request-Method": "POST"}
        )
    except ApiUnreachable as error:
        run.api_down = str(error)
        raise Fail(
            f"the token API does not answer: {error}",
            f"check the ApiUrl output and your network; the API is deleted with the stack {_see('api')}",
        ) from None
    return f"{run.api_url} answers (HTTP {answer.status})"


def _preflight(run: Run, origin: str) -> Answer:
    return run.http(
        "OPTIONS",
        "/token",
        {
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": ",".join(CORS_HEADERS),
        },
    )


def check_cors_preflight(run: Run) -> str:
    if not run.origins:
        raise Fail("the stack has no AllowedOrigins parameter", f"deploy with AllowedOrigins ({DEPLOY}#parameters)")
    problems = []
    for origin in run.origins:
        answer = _preflight(run, origin)
        allowed = answer.headers.get("access-control-allow-origin")
        missing_methods = {m.lower() for m in CORS_METHODS if m != "OPTIONS"} - answer.header_items(
            "access-control-allow-methods"
        )
        missing_headers = set(CORS_HEADERS) - answer.header_items("access-control-allow-headers")
        if answer.status not in (200, 204):
            problems.append(f"{origin}: HTTP {answer.status}")
        elif allowed != origin:
            problems.append(f"{origin}: Access-Control-Allow-Origin is {allowed or 'absent'}")
        elif missing_methods or missing_headers:
            problems.append(f"{origin}: does not allow {', '.join(sorted(missing_methods | missing_headers))}")
    if problems:
        raise Fail(
            "the preflight refuses an allowed origin: " + "; ".join(problems),
            "AllowedOrigins must list each origin exactly as the browser sends it; "
            f"update the stack {_see('cors-preflight')}",
        )
    return f"{len(run.origins)} allowed origin(s) get POST with {', '.join(CORS_HEADERS)}: " + ", ".join(run.origins)


def check_cors_unlisted_origin(run: Run) -> str:
    answer = _preflight(run, UNLISTED_ORIGIN)
    allowed = answer.headers.get("access-control-allow-origin")
    if allowed in (UNLISTED_ORIGIN, "*"):
        raise Fail(
            f"an origin not in AllowedOrigins ({UNLISTED_ORIGIN}) is allowed: Access-Control-Allow-Origin: {allowed}",
            f"CORS must list your sites only; deploy this release's template {_see('cors-unlisted-origin')}",
        )
    return f"{UNLISTED_ORIGIN} is not allowed (HTTP {answer.status}, no Access-Control-Allow-Origin)"


def _unauthenticated(run: Run) -> Answer:
    if "unauthenticated" not in run.answers:
        origin = run.origins[0] if run.origins else UNLISTED_ORIGIN
        run.answers["unauthenticated"] = run.http(
            "POST", "/token", {"Origin": origin, "Content-Type": "application/json"}, b"{}"
        )
    return run.answers["unauthenticated"]


def check_token_unauthenticated(run: Run) -> str:
    answer = _unauthenticated(run)
    body = answer.json()
    if answer.status != 401:
        raise Fail(
            f"POST /token without a token answered {answer.status}, not 401",
            "the route must sit behind the JWT authorizer; "
            f"deploy this release's template {_see('token-unauthenticated')}",
        )
    if isinstance(body, dict) and body.get("error") == "unauthenticated":
        raise Fail(
            "POST /token without a token reached the mint (its own 401): the route has no JWT authorizer",
            f"deploy this release's template, whose /token route uses VisitorJwt {_see('token-unauthenticated')}",
        )
    if answer.headers.get("access-control-allow-origin"):
        cors = "carries CORS headers, so a page can read it"
    else:
        cors = "carries no CORS headers, so a browser sees a network error, not the 401"
    return f"401 from the JWT authorizer; the 401 {cors}"


def check_cors_exposes_retry_after(run: Run) -> str:
    candidates = [("the 401 of POST /token", _unauthenticated(run))]
    if not candidates[0][1].headers.get("access-control-allow-origin") and run.origins:
        candidates.append(("the answer of POST /server/token", _server_token(run, origin=run.origins[0])))
    for what, answer in candidates:
        if answer.headers.get("access-control-allow-origin"):
            exposed = answer.header_items("access-control-expose-headers")
            if set(CORS_EXPOSED) <= exposed:
                return f"{what} exposes Retry-After to the page"
            raise Fail(
                f"{what} does not expose Retry-After "
                f"(Access-Control-Expose-Headers: {', '.join(sorted(exposed)) or 'absent'})",
                "a page cannot honour a 503's Retry-After; "
                f"deploy this release's template {_see('cors-exposes-retry-after')}",
            )
    raise Fail(
        "no answer to an allowed origin carried CORS headers",
        f"check AllowedOrigins and the API's CORS configuration {_see('cors-exposes-retry-after')}",
    )


# --- tokens ----------------------------------------------------------------------------------------------


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def token_problems(answer: Answer, now: datetime, identity: str | None = None) -> list[str]:
    """What is wrong with a 200 of the mint, for Kustomer: empty when the token is shaped as Kustomer takes it.
    The token itself is looked at, never returned or printed."""
    problems = []
    body = answer.json()
    if not isinstance(body, dict) or not isinstance(body.get("jwtToken"), str):
        return ["the answer has no jwtToken"]
    if "no-store" not in answer.header_items("cache-control"):
        problems.append("no Cache-Control: no-store")
    parts = body["jwtToken"].split(".")
    if len(parts) != 3:
        return [*problems, "the token is not a compact JWS of three parts"]
    try:
        header, payload, signature = _b64(parts[0]), json.loads(_b64(parts[1])), _b64(parts[2])
    except (ValueError, binascii.Error):
        return [*problems, "the token's parts are not base64url JSON"]
    if header != KUSTOMER_HEADER:
        problems.append('the header is not exactly {"alg":"HS256","typ":"JWT"}')
    if len(signature) != 32:
        problems.append("the signature is not an HS256 one (32 bytes)")
    if not isinstance(payload, dict) or list(payload)[-1:] != ["iat"]:
        return [*problems, "the claims do not end with iat"]
    identifiers = [name for name in payload if name != "iat"]
    if not identifiers or set(identifiers) - {"externalId", "email"}:
        problems.append(f"the claims are {identifiers}, not externalId and/or email")
    elif not all(isinstance(payload[name], str) and payload[name] for name in identifiers):
        problems.append("an identity claim is not a non-empty string")
    if identity in ("externalId", "email") and identifiers != [identity]:
        problems.append(f"TokenIdentity is {identity} but the token carries {identifiers}")
    issued = payload["iat"]
    if not isinstance(issued, int) or isinstance(issued, bool):
        problems.append("iat is not an integer")
    else:
        skew = issued - now.timestamp()
        if abs(skew) > IAT_TOLERANCE_SECONDS:
            problems.append(f"iat is {skew:+.0f} s from this machine's clock")
        if body.get("issuedAt") != issued or body.get("expiresAt") != issued + TOKEN_LIFETIME_SECONDS:
            problems.append("issuedAt/expiresAt do not match iat and iat + 900")
    if any(body.get(name) != payload.get(name) for name in identifiers):
        problems.append("the answer's identifiers differ from the token's claims")
    return problems


def _refusal(what: str, answer: Answer) -> Fail:
    body = answer.json()
    code = body.get("error") if isinstance(body, dict) else None
    if answer.status == 503 and code == "signing_secret_unavailable":
        return Fail(
            f"{what} answered 503 signing_secret_unavailable: the mint has no usable signing secret",
            f"store the API key and fetch the signing secret ({AFTER_FIRST_DEPLOY}); "
            f"runbook: {_ops('MintSecretUnavailableAlarm')}",
        )
    if answer.status >= 500:
        return Fail(
            f"{what} answered {answer.status} {code or ''}".strip(), f"runbook: {_ops('MintInternalErrorAlarm')}"
        )
    return Fail(f"{what} answered {answer.status} {code or ''}".strip(), f"see {_verify_doc('token-with-identity')}")


def check_token_with_identity(run: Run) -> str:
    try:
        token = run.facts.access_token()
    except ValueError as error:
        raise Fail(
            str(error), f"fix the variable or unset it to skip this check {_see('token-with-identity')}"
        ) from None
    if not token:
        raise Skip(
            "no identity-provider token: set VERIFY_ACCESS_TOKEN, "
            "or VERIFY_ACCESS_TOKEN_COMMAND to a command that prints one"
        )
    origin = run.origins[0] if run.origins else UNLISTED_ORIGIN
    answer = run.http("POST", "/token", {"Authorization": f"Bearer {token}", "Origin": origin})
    if answer.status == 401:
        reason = answer.headers.get("www-authenticate", "")
        described = re.search(r'error_description="([^"]*)"', reason)
        raise Fail(
            f"the JWT authorizer refused your token: {described.group(1) if described else 'no reason given'}",
            "the token must come from JwtIssuer with an audience in JwtAudience "
            f"(and a scope of AuthorizationScopes) {_see('token-with-identity')}",
        )
    if answer.status != 200:
        raise _refusal("POST /token with your token", answer)
    identity = run.facts.stack.parameters.get("TokenIdentity")
    problems = token_problems(answer, run.facts.now(), identity)
    if problems:
        raise Fail(
            "the token is not shaped for Kustomer: " + "; ".join(problems), f"see {_verify_doc('token-with-identity')}"
        )
    return "200 and a token shaped for Kustomer (HS256/JWT header, identity claims then iat, iat within a minute)"


def _server_token(run: Run, origin: str | None = None) -> Answer:
    key = f"server-token {origin}"
    if key not in run.answers:
        body = json.dumps(SERVER_TOKEN_PROBE).encode()
        headers = {"Content-Type": "application/json", **({"Origin": origin} if origin else {})}
        url = run.api_url + "/server/token"
        signed = run.facts.sign_server_token(url, body, headers)
        run.answers[key] = run.http("POST", "/server/token", signed, body)
    return run.answers[key]


def check_server_token_unsigned(run: Run) -> str:
    body = json.dumps(SERVER_TOKEN_PROBE).encode()
    answer = run.http("POST", "/server/token", {"Content-Type": "application/json"}, body)
    refusal = answer.json()
    if answer.status == 403 and not (isinstance(refusal, dict) and "error" in refusal):
        return "403 from API Gateway before the mint ran: the route needs a SigV4 signature (AWS_IAM)"
    if isinstance(refusal, dict) and "error" in refusal:
        seen = f"{answer.status} {refusal.get('error')} from the mint"
    else:
        seen = f"HTTP {answer.status}"
    raise Fail(
        f"POST /server/token without a signature reached the mint or was not refused ({seen}): "
        "the route has no AWS_IAM authorization",
        f"deploy this release's template, whose /server/token route uses AWS_IAM {_see('server-token-unsigned')}",
    )


def check_server_token(run: Run) -> str:
    answer = _server_token(run)
    body = answer.json()
    caller = run.facts.caller
    if answer.status == 200:
        problems = token_problems(answer, run.facts.now(), "externalId")
        if problems:
            raise Fail(
                "the token is not shaped for Kustomer: " + "; ".join(problems), f"see {_verify_doc('server-token')}"
            )
        return f"200 for {caller}: it is listed in ServerTokenCallers, and the token is shaped for Kustomer"
    if answer.status == 403 and isinstance(body, dict) and body.get("error") == "caller_not_allowed":
        return f"403 caller_not_allowed for {caller}: it is not listed in ServerTokenCallers, as the mint should answer"
    if answer.status == 403:
        raise Fail(
            f"API Gateway refused the SigV4-signed request of {caller} (IAM) before the mint ran",
            f"your credentials need execute-api:Invoke on the ServerTokenInvokeArn output {_see('server-token')}",
        )
    raise _refusal("POST /server/token", answer)


# --- secrets ---------------------------------------------------------------------------------------------


def _versions(run: Run, secret_id: str) -> list[dict[str, Any]]:
    client = run.client("secretsmanager")
    versions: list[dict[str, Any]] = []
    arguments: dict[str, Any] = {"SecretId": secret_id, "IncludeDeprecated": False}
    while True:  # no paginator for ListSecretVersionIds in every botocore
        page = client.list_secret_version_ids(**arguments)
        versions += page.get("Versions", [])
        if not page.get("NextToken"):
            return versions
        arguments["NextToken"] = page["NextToken"]


def check_signing_secret(run: Run) -> str:
    arn = run.output("SigningSecretArn")
    versions = _versions(run, arn)
    current = [v for v in versions if "AWSCURRENT" in v.get("VersionStages", [])]
    if not current:
        raise Fail(
            "the signing secret holds no value (no version is AWSCURRENT): the mint answers 503",
            f"store the API key, then run the RefreshSigningSecretCommand output ({AFTER_FIRST_DEPLOY})",
        )
    pending = [
        v for v in versions if "AWSPENDING" in v.get("VersionStages", []) and "AWSCURRENT" not in v["VersionStages"]
    ]
    now = run.facts.now()
    interval, found_from = schedule_interval(run.facts.stack.parameters.get("RefreshSchedule"))
    # A scheduled run withdraws an abandoned AWSPENDING once it is over 10 minutes old: until the first run after
    # that, a pending version is a rotation running or one about to be withdrawn, not a stuck one.
    grace = PENDING_WITHDRAWN_AFTER + interval
    minutes = int(grace.total_seconds() // 60)
    stuck = [v for v in pending if not v.get("CreatedDate") or now - v["CreatedDate"] > grace]
    if stuck:
        since = _when(stuck[0].get("CreatedDate"))
        raise Fail(
            f"AWSPENDING is left on another version (since {since}, over {minutes} min: 10 min and one run of "
            f"{found_from}): a rotation never finished, and rotate-secret reattempts it",
            f"runbook: {STUCK_ROTATION}",
        )
    stored = current[0].get("CreatedDate")
    summary = f"AWSCURRENT set, no AWSPENDING left behind; the current value stored {_when(stored)}"
    if pending:
        summary += (
            f"; a rotation is running or awaits the next scheduled run (AWSPENDING since "
            f"{_when(pending[0].get('CreatedDate'))}, within {minutes} min)"
        )
    return summary


def check_signing_secret_rotation(run: Run) -> str:
    arn = run.output("SigningSecretArn")
    described = run.client("secretsmanager").describe_secret(SecretId=arn)
    refresher = run.output("RefreshSecretFunctionArn")
    if not described.get("RotationEnabled"):
        raise Fail(
            "rotation of the signing secret is off: rotate-secret and the console cannot re-read it from Kustomer",
            f"update the stack: SigningSecretRotation turns it on with the refresher {_see('signing-secret-rotation')}",
        )
    if described.get("RotationLambdaARN") != refresher:
        raise Fail(
            f"the signing secret rotates with another function ({described.get('RotationLambdaARN')})",
            f"update the stack: SigningSecretRotation sets RefreshSecretFunction {_see('signing-secret-rotation')}",
        )
    return (
        f"rotation on with RefreshSecretFunction; last rotated {_when(described.get('LastRotatedDate'))}, "
        f"next {_when(described.get('NextRotationDate'))}"
    )


def check_api_key_secret(run: Run) -> str:
    versions = _versions(run, run.output("ApiKeySecretArn"))
    current = [v for v in versions if "AWSCURRENT" in v.get("VersionStages", [])]
    if not current:
        raise Fail(
            "the API key secret holds no value: the refresher cannot read the signing secret from Kustomer",
            f"run the StoreApiKeyCommand output ({AFTER_FIRST_DEPLOY})",
        )
    return f"has a value (stored {_when(current[0].get('CreatedDate'))}; the value itself is not read)"


# --- the refresher ---------------------------------------------------------------------------------------


def _one(run: Run, resource_type: str, default: str | None = None) -> str:
    found = list(run.facts.stack.of_type(resource_type).values())
    if not found and default is not None:
        return default
    if len(found) != 1:
        raise Fail(
            f"the stack has {len(found)} {resource_type}, not one",
            f"deploy this release's template {_see('schedule')}",
        )
    return found[0]


def check_schedule(run: Run) -> str:
    # Found from the stack's resources, not by name: a group of the stack's own, or (older templates) the default.
    group = _one(run, "AWS::Scheduler::ScheduleGroup", default="default").split("/")[-1]
    name = _one(run, "AWS::Scheduler::Schedule")
    if name.startswith("arn:"):  # arn:aws:scheduler:REGION:ACCOUNT:schedule/GROUP/NAME, should an id be the ARN
        group, name = name.split("/")[-2:]
    schedule = run.client("scheduler").get_schedule(Name=name, GroupName=group)
    refresher = run.output("RefreshSecretFunctionArn")
    if schedule.get("State") != "ENABLED":
        raise Fail(
            f"the refresh schedule {name} is {schedule.get('State')}: "
            "a secret regenerated at Kustomer would not reach the mint",
            f"enable it (or update the stack) and see the runbook: {_ops('RefreshHeartbeatAlarm')}",
        )
    target = schedule.get("Target", {})
    if target.get("Arn") != refresher:
        raise Fail(
            f"the refresh schedule invokes {target.get('Arn')}, not the stack's refresher",
            f"update the stack ({_ops('RefreshHeartbeatAlarm')})",
        )
    if not target.get("DeadLetterConfig", {}).get("Arn"):
        raise Fail(
            "the refresh schedule has no dead-letter queue", f"update the stack ({_ops('RefreshDeadLetterAlarm')})"
        )
    return f"{name} ENABLED, {schedule.get('ScheduleExpression')}, invokes RefreshSecretFunction"


def refresh_failed_search(stack_name: str) -> str:
    """The SEARCH that finds every RefreshFailed series of the stack, whatever its Reason, in GetMetricData itself."""
    return (
        f'SEARCH(\'{{{METRICS_NAMESPACE},service,Reason}} MetricName="RefreshFailed" service="{stack_name}"\', '
        f"'Sum', {REFRESH_PERIOD_SECONDS})"
    )


def _metric_data(run: Run, queries: list[dict[str, Any]], start: datetime, end: datetime) -> list[dict[str, Any]]:
    """GetMetricData, every page; a SEARCH answers one result per series it found."""
    results: list[dict[str, Any]] = []
    paginator = run.client("cloudwatch").get_paginator("get_metric_data")
    for page in paginator.paginate(
        MetricDataQueries=queries, StartTime=start, EndTime=end, ScanBy="TimestampAscending"
    ):
        for result in page.get("MetricDataResults", []):
            same = [r for r in results if (r["Id"], r.get("Label")) == (result["Id"], result.get("Label"))]
            if same:  # a later page of the same series
                same[0]["Timestamps"] = [*same[0].get("Timestamps", []), *result.get("Timestamps", [])]
                same[0]["Values"] = [*same[0].get("Values", []), *result.get("Values", [])]
            else:
                results.append(dict(result))
    return results


def _counted(result: dict[str, Any]) -> list[datetime]:
    """The periods of a series that counted at least one."""
    return [t for t, v in zip(result.get("Timestamps", []), result.get("Values", []), strict=False) if v > 0]


def _stat(metric_id: str, namespace: str, name: str, dimensions: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "Id": metric_id,
        "MetricStat": {
            "Metric": {"Namespace": namespace, "MetricName": name, "Dimensions": dimensions},
            "Period": REFRESH_PERIOD_SECONDS,
            "Stat": "Sum",
        },
    }


def check_refresh_runs(run: Run) -> str:
    stack = run.facts.stack
    window = heartbeat_window(stack.parameters.get("RefreshHeartbeatSeconds"))
    now = run.facts.now()
    queries = [
        # every successful run, scheduled or a rotation's, changed or not (what RefreshHeartbeatAlarm watches)
        _stat("succeeded", METRICS_NAMESPACE, "RefreshSucceeded", [{"Name": "service", "Value": stack.name}]),
        {"Id": "failed", "Expression": refresh_failed_search(stack.name), "Label": "${PROP('Dim.Reason')}"},
    ]
    refresher = stack.resources.get("RefreshSecretFunction")
    if refresher is not None:
        # Lambda's own count of failed runs (a timeout or a crash writes no RefreshFailed), by its exact name
        queries.append(
            _stat("errors", "AWS/Lambda", "Errors", [{"Name": "FunctionName", "Value": refresher.physical_id}])
        )
    results = _metric_data(run, queries, now - window, now + timedelta(minutes=1))
    successes = sorted(t for r in results if r["Id"] == "succeeded" for t in _counted(r))
    failures = sorted(t for r in results if r["Id"] != "succeeded" for t in _counted(r))
    reasons = sorted(
        {
            r.get("Label") or "no reason recorded"
            for r in results
            if r["Id"] not in ("succeeded", "errors") and _counted(r)
        }
    )
    if not reasons and failures:
        reasons = ["Lambda counted errors, no RefreshFailed"]
    minutes = int(window.total_seconds() // 60)
    # Minutes: a failure and the retry that succeeded in the same minute is a recovered refresher.
    if failures and (not successes or failures[-1] > successes[-1]):
        raise Fail(
            f"the refresher failed in {len(set(failures))} minute(s) of the last {minutes} min, "
            f"the last {_ago(run, failures[-1])} ({', '.join(reasons)}), and has not succeeded since",
            f"runbook: {_ops('RefreshErrorsAlarm')}",
        )
    if not successes:
        if now - stack.last_changed < FIRST_RUN_GRACE:
            raise Skip(f"no refresher run recorded yet; the stack changed {_ago(run, stack.last_changed)}")
        raise Fail(
            f"no successful refresher run in the last {minutes} min: the schedule stopped or every run fails unseen",
            f"runbook: {_ops('RefreshHeartbeatAlarm')}",
        )
    recovered = f"; earlier failures ({', '.join(reasons)}) since recovered" if failures else ""
    return (
        f"succeeded in {len(successes)} minute(s) of the last {minutes} min (RefreshHeartbeatSeconds), "
        f"the latest {_ago(run, successes[-1])}{recovered}"
    )


def check_dead_letter_queue(run: Run) -> str:
    url = run.output("RefreshDeadLetterQueueUrl")
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    attributes = run.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=names).get("Attributes", {})
    waiting = sum(int(attributes.get(name, 0)) for name in names)
    if waiting:
        raise Fail(
            f"{waiting} failed refresher invocation(s) wait in the dead-letter queue",
            f"runbook: {_ops('RefreshDeadLetterAlarm')}",
        )
    return "empty"


# --- what the routes invoke ------------------------------------------------------------------------------


def _differences(invoked: FunctionConfig, declared: FunctionConfig, layer: str) -> list[str]:
    differences = []
    env = sorted(
        k
        for k in set(invoked.environment) | set(declared.environment)
        if invoked.environment.get(k) != declared.environment.get(k)
    )
    if env:
        differences.append("environment " + ", ".join(env))  # names only: values are never printed
    settings = sorted(
        k for k in set(invoked.settings) | set(declared.settings) if invoked.settings.get(k) != declared.settings.get(k)
    )
    if settings:
        differences.append(", ".join(settings))
    if layer not in invoked.layers or invoked.layers != declared.layers:
        differences.append(f"layers (the stack declares {', '.join(declared.layers) or 'none'})")
    return differences


def check_routes_invoke_live(run: Run) -> str:
    target = run.facts.routes_target()
    problems = list(target.problems)
    for route, invoked in sorted(target.invoked.items()):
        differences = _differences(invoked, target.declared, target.declared_layer)
        if differences:
            problems.append(
                f"{route} invokes {invoked.label}, which differs from the stack's configuration in "
                + "; ".join(differences)
            )
    if not target.invoked:
        problems.append("no route invokes the mint")
    if problems:
        raise Fail("; ".join(problems), f"update the stack so the live alias moves to a new version ({RUNNING_CODE})")
    labels = sorted({invoked.label for invoked in target.invoked.values()})
    return (
        f"{' and '.join(sorted(target.invoked))} invoke {', '.join(labels)}, with the declared configuration and layer"
    )


# --- alarms ----------------------------------------------------------------------------------------------


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _alarms(run: Run) -> dict[str, dict[str, Any]]:
    """The stack's alarms as DescribeAlarms answers them, by alarm name (every page; names 100 at a time)."""
    if run.alarms is None:
        declared = run.facts.stack.of_type("AWS::CloudWatch::Alarm")
        paginator = run.client("cloudwatch").get_paginator("describe_alarms")
        found: dict[str, dict[str, Any]] = {}
        for names in _chunks(sorted(declared.values()), 100):
            for page in paginator.paginate(AlarmNames=names, AlarmTypes=["MetricAlarm", "CompositeAlarm"]):
                for alarm in page.get("MetricAlarms", []) + page.get("CompositeAlarms", []):
                    found[alarm["AlarmName"]] = alarm
        run.alarms = found
    return run.alarms


def check_alarms(run: Run) -> str:
    declared = run.facts.stack.of_type("AWS::CloudWatch::Alarm")
    if not declared:
        raise Fail("the stack has no alarms", f"deploy this release's template ({_ops('alarms')})")
    states = {name: alarm["StateValue"] for name, alarm in _alarms(run).items()}
    missing = sorted(logical for logical, name in declared.items() if name not in states)
    firing = sorted(logical for logical, name in declared.items() if states.get(name) == "ALARM")
    if missing:
        raise Fail(f"missing: {', '.join(missing)}", f"update the stack to create them again ({_ops('alarms')})")
    if firing:
        young = run.facts.now() - run.facts.stack.last_changed < AFTER_DEPLOY_ALARMS
        first_deploy = (
            f"; right after a first deploy, until the API key is stored and the signing secret fetched, "
            f"refresher alarms fire: see {AFTER_FIRST_DEPLOY}"
            if young and set(firing) & FIRST_DEPLOY_ALARMS
            else ""
        )
        raise Fail(
            f"in ALARM: {', '.join(firing)}{first_deploy}",
            f"runbook: {_ops(firing[0])}" + (" and the sections of the others" if len(firing) > 1 else ""),
        )
    waiting = sum(1 for state in states.values() if state == "INSUFFICIENT_DATA")
    return f"{len(declared)} alarms, none in ALARM" + (f" ({waiting} with insufficient data)" if waiting else "")


@dataclass(frozen=True)
class Watched:
    """One metric an alarm watches, with the alarm's exact dimensions."""

    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...]

    def shown(self) -> str:
        return f"{self.namespace} {self.name} {{{', '.join(f'{k}={v}' for k, v in self.dimensions)}}}"

    def as_metric(self) -> dict[str, Any]:
        return {
            "Namespace": self.namespace,
            "MetricName": self.name,
            "Dimensions": [{"Name": k, "Value": v} for k, v in self.dimensions],
        }


def _watched(alarm: dict[str, Any]) -> list[Watched]:
    metrics = []
    if alarm.get("MetricName"):
        metrics.append(alarm)
    metrics += [query["MetricStat"]["Metric"] for query in alarm.get("Metrics", []) if "MetricStat" in query]
    return [
        Watched(m["Namespace"], m["MetricName"], tuple((d["Name"], d["Value"]) for d in m.get("Dimensions", [])))
        for m in metrics
    ]


def _has_data(run: Run, watched: list[Watched]) -> set[Watched]:
    """The metrics with at least one sample, with exactly these dimensions, in the last METRIC_LOOKBACK."""
    if not watched:
        return set()
    now = run.facts.now()
    queries = [
        {"Id": f"m{index}", "MetricStat": {"Metric": metric.as_metric(), "Period": 3600, "Stat": "SampleCount"}}
        for index, metric in enumerate(watched)
    ]
    results = _metric_data(run, queries, now - METRIC_LOOKBACK, now + timedelta(minutes=1))
    seen = {r["Id"] for r in results if any(v > 0 for v in r.get("Values", []))}
    return {metric for index, metric in enumerate(watched) if f"m{index}" in seen}


def _listed(run: Run, metric: Watched) -> list[dict[str, str]]:
    """The dimension sets CloudWatch lists for this metric of the same resource (the alarm's first dimension)."""
    if not metric.dimensions:
        return []
    first = metric.dimensions[0]
    sets = []
    paginator = run.client("cloudwatch").get_paginator("list_metrics")
    pages = paginator.paginate(
        Namespace=metric.namespace, MetricName=metric.name, Dimensions=[{"Name": first[0], "Value": first[1]}]
    )
    for page in pages:
        sets += [{d["Name"]: d["Value"] for d in listed.get("Dimensions", [])} for listed in page.get("Metrics", [])]
    return sets


def _elsewhere(metric: Watched, listed: list[dict[str, str]]) -> list[str]:
    """The same series written under other dimensions: the same dimension names, values that differ other than in
    the route (Method, Resource: another route is another series, not a mistake)."""
    ours = dict(metric.dimensions)
    found = []
    for dimensions in listed:
        if set(dimensions) != set(ours) or dimensions == ours:
            continue
        differing = {name for name in ours if dimensions[name] != ours[name]}
        if differing.isdisjoint(ROUTE_DIMENSIONS):
            found.append(", ".join(f"{name}={dimensions[name]}" for name in sorted(differing)))
    return found


def _route_metrics_off(run: Run, metric: Watched) -> str | None:
    """For an API Gateway metric of a route: why the route writes none (no such stage, detailed metrics off)."""
    dimensions = dict(metric.dimensions)
    if metric.namespace != "AWS/ApiGateway" or not {"ApiId", "Stage", *ROUTE_DIMENSIONS} <= set(dimensions):
        return None
    try:
        stage = run.client("apigatewayv2").get_stage(ApiId=dimensions["ApiId"], StageName=dimensions["Stage"])
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "NotFoundException":
            return f"the API has no stage {dimensions['Stage']}"
        raise
    route = f"{dimensions['Method']} {dimensions['Resource']}"
    settings = {**stage.get("DefaultRouteSettings", {}), **stage.get("RouteSettings", {}).get(route, {})}
    if not settings.get("DetailedMetricsEnabled"):
        return f"the stage {dimensions['Stage']} has DetailedMetricsEnabled off for {route}"
    return None


def check_alarm_metrics(run: Run) -> str:
    declared = run.facts.stack.of_type("AWS::CloudWatch::Alarm")
    alarms = _alarms(run)
    watched_by: dict[Watched, list[str]] = {}
    for logical, name in sorted(declared.items()):
        for metric in _watched(alarms.get(name, {})):
            watched_by.setdefault(metric, []).append(logical)
    if not watched_by:
        raise Skip("no alarm of the stack watches a metric here (check alarms)")
    metrics = sorted(watched_by, key=lambda m: m.shown())
    seen = _has_data(run, metrics)
    problems = []
    for metric in metrics:
        if metric in seen:
            continue
        off = _route_metrics_off(run, metric)
        if off:
            problems.append(f"{'/'.join(watched_by[metric])} watches {metric.shown()}, but {off}")
            continue
        elsewhere = _elsewhere(metric, _listed(run, metric))
        if elsewhere:
            problems.append(
                f"{'/'.join(watched_by[metric])} watches {metric.shown()}, which has no data, while CloudWatch has "
                f"{metric.name} of the same resource with {'; '.join(elsewhere)}"
            )
    if problems:
        raise Fail(
            "an alarm watches a series nobody writes: " + "; ".join(problems),
            f"the alarm would never fire; deploy this release's template {_see('alarm-metrics')}",
        )
    routes = [metric for metric in metrics if set(dict(metric.dimensions)) & set(ROUTE_DIMENSIONS)]
    waiting = [metric for metric in routes if metric not in seen]
    if waiting:
        raise Skip(
            "no data yet for "
            + "; ".join(f"{'/'.join(watched_by[m])}'s {m.shown()}" for m in waiting)
            + f" in the last {int(METRIC_LOOKBACK.total_seconds() // 3600)} h: CloudWatch shows a route's metrics "
            "minutes after its requests (verify just sent POST /token): run verify again in 15 minutes"
        )
    quiet = sorted({name for metric in metrics if metric not in seen for name in watched_by[metric]})
    shown = "; ".join(f"{'/'.join(watched_by[m])}'s {m.shown()}" for m in routes) or "no route-level metric"
    return f"{len(seen)} of {len(metrics)} watched metrics have data with their alarms' dimensions ({shown})" + (
        f"; no data yet for {', '.join(quiet)} (written only when something fails)" if quiet else ""
    )


CHECKS: dict[str, Check] = {
    "stack": check_stack,
    "api": check_api,
    "cors-preflight": check_cors_preflight,
    "cors-unlisted-origin": check_cors_unlisted_origin,
    "token-unauthenticated": check_token_unauthenticated,
    "cors-exposes-retry-after": check_cors_exposes_retry_after,
    "token-with-identity": check_token_with_identity,
    "server-token-unsigned": check_server_token_unsigned,
    "server-token": check_server_token,
    "signing-secret": check_signing_secret,
    "signing-secret-rotation": check_signing_secret_rotation,
    "api-key-secret": check_api_key_secret,
    "schedule": check_schedule,
    "refresh-runs": check_refresh_runs,
    "dead-letter-queue": check_dead_letter_queue,
    "routes-invoke-live": check_routes_invoke_live,
    "alarms": check_alarms,
    "alarm-metrics": check_alarm_metrics,
}


def _aws_refusal(error: ClientError) -> str:
    info = error.response.get("Error", {})
    operation = getattr(error, "operation_name", "a call")
    return f"AWS refused {operation}: {info.get('Code', '?')}: {info.get('Message', '')}".strip()


def run_one(run: Run, name: str) -> Result:
    reason = run.facts.unavailable.get(name)
    if reason:
        return Result(name, Status.SKIP, reason)
    try:
        return Result(name, Status.PASS, CHECKS[name](run))
    except Skip as skip:
        return Result(name, Status.SKIP, str(skip))
    except Fail as failure:
        return Result(name, Status.FAIL, failure.summary, failure.advice)
    except ApiUnreachable as error:
        return Result(name, Status.FAIL, str(error), f"check the API {_see('api')}")
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        advice = (
            f"your credentials need the read-only permissions listed in {_verify_doc('permissions')}"
            if "AccessDenied" in code or code == "UnauthorizedOperation"
            else f"see {_verify_doc(name)}"
        )
        return Result(name, Status.FAIL, _aws_refusal(error), advice)
    except BotoCoreError as error:
        return Result(name, Status.FAIL, f"AWS could not be asked: {error}", f"see {_verify_doc(name)}")
    except Exception as error:  # its type only: the text of an unexpected error may hold a header value (a token)
        return Result(
            name,
            Status.FAIL,
            f"the check itself failed with {type(error).__name__} (its message is not shown: it may hold a token)",
            f"see {_verify_doc(name)}",
        )


def run_checks(facts: Facts, only: Sequence[str] | None = None) -> list[Result]:
    """Every check (or the named ones), in order. Raises StackRefused when the stack cannot be checked at all:
    an API that does not answer is one line for the operator, not a column of FAILs."""
    run = Run(facts)
    names = list(only) if only else list(CHECKS)
    unusable = stack_unusable(facts)
    if unusable:
        return [run_one(run, name) if name == "stack" else Result(name, Status.SKIP, unusable) for name in names]
    api = run_one(run, "api")
    if run.api_down is not None:
        raise StackRefused(
            f"the token API of {facts.stack.name} does not answer: {run.api_down}; check the ApiUrl output, "
            f"your network and proxy ({VERIFY}#api)"
        )
    return [api if name == "api" else run_one(run, name) for name in names]
