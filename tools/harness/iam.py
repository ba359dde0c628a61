"""The IAM check of the local Secrets Manager: each caller may do exactly what its role in template.yaml grants.

Evaluation follows AWS for a request inside one account (IAM User Guide, "Policy evaluation
logic" and "The difference between explicit and implicit denies"): an explicit Deny in any
policy that applies wins; otherwise an Allow in the role's identity-based policies, or in the
secret's resource-based policy for this principal, allows; otherwise the request is denied
implicitly. Denials carry the messages of "Troubleshoot access denied error messages".

Supported, and nothing more: Effect Allow/Deny; Action and Resource with the `*` and `?`
wildcards (actions case-insensitive; ARNs compared per colon-separated component, as ArnLike
does); Principal "*", IAM ARNs and Service principals in resource policies; conditions
StringEquals, StringNotEquals, ArnEquals, ArnLike, ArnNotEquals and ArnNotLike on
aws:PrincipalArn (the role's ARN for an assumed-role session), several values meaning OR
(NOR for the negated operators). Anything else (NotAction, NotResource, NotPrincipal, other
operators or keys, managed policies, permission boundaries) raises UnsupportedPolicy: it is
never guessed at.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tools.harness.template import ACCOUNT_ID, REGION, CloudFormationValues, load_template

# The key the test process and the operator's tools use: allowed everything, as an account admin.
ADMIN_ACCESS_KEY_ID = "AKIALOCALADMIN000000"
ADMIN_ENVIRONMENT = {"AWS_ACCESS_KEY_ID": ADMIN_ACCESS_KEY_ID, "AWS_SECRET_ACCESS_KEY": "local-admin-secret-key"}
ROLE_KEY_PREFIX = "ASIA"

_SECRET_TYPE = "AWS::SecretsManager::Secret"
_RESOURCE_POLICY_TYPE = "AWS::SecretsManager::ResourcePolicy"
_ROLE_TYPE = "AWS::IAM::Role"
_POSITIVE = {"StringEquals": "string", "ArnEquals": "arn", "ArnLike": "arn"}
_NEGATED = {"StringNotEquals": "string", "ArnNotEquals": "arn", "ArnNotLike": "arn"}
_STATEMENT_KEYS = {"Sid", "Effect", "Action", "Resource", "Principal", "Condition"}


class UnsupportedPolicy(Exception):
    """A policy uses something this check does not evaluate; it refuses rather than guess."""


class UnknownCaller(Exception):
    """The access key belongs to no role of the template and is not the admin key."""


def role_arn(role: str) -> str:
    return f"arn:aws:iam::{ACCOUNT_ID}:role/{role}"


def access_key_id(role: str) -> str:
    return ROLE_KEY_PREFIX + role.upper()


def role_credentials(role: str) -> dict[str, str]:
    """The environment a function running under `role` gets (its session token stays the process's)."""
    return {"AWS_ACCESS_KEY_ID": access_key_id(role), "AWS_SECRET_ACCESS_KEY": f"secret-key-of-{role}"}


def role_client(role: str, endpoint_url: str) -> Any:
    """A Secrets Manager client that signs as `role`."""
    import boto3

    credentials = role_credentials(role)
    return boto3.client(
        "secretsmanager",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
    )


def function_role(template: dict[str, Any], function: str) -> str:
    """The logical id of the role a function runs under (its Role: !GetAtt X.Arn)."""
    role = template["Resources"][function]["Properties"].get("Role")
    if not (isinstance(role, dict) and set(role) == {"Fn::GetAtt"} and list(role["Fn::GetAtt"])[1:] == ["Arn"]):
        raise UnsupportedPolicy(f"{function}: Role must be !GetAtt <role>.Arn, got {role!r}")
    return str(role["Fn::GetAtt"][0])


@dataclass(frozen=True)
class Caller:
    """A Lambda function's role session."""

    role: str

    @property
    def principal_arn(self) -> str:
        """aws:PrincipalArn: for an assumed-role session, the role's ARN."""
        return role_arn(self.role)

    @property
    def session_arn(self) -> str:
        session = self.role.removesuffix("Role") or self.role  # Lambda names the session after the function
        return f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{self.role}/{session}"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    message: str = ""


@dataclass(frozen=True)
class Statement:
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    principals: tuple[str, ...] | None
    conditions: dict[str, dict[str, tuple[str, ...]]]
    where: str


def _glob(pattern: str, *, ignore_case: bool = False) -> re.Pattern[str]:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(regex, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def action_matches(pattern: str, action: str) -> bool:
    return _glob(pattern, ignore_case=True).fullmatch(action) is not None


def arn_matches(pattern: str, arn: str) -> bool:
    """ArnLike: each of the six colon-separated components is matched on its own; "*" alone matches all."""
    if pattern == "*":
        return True
    wanted, given = pattern.split(":", 5), arn.split(":", 5)
    return len(wanted) == len(given) == 6 and all(
        _glob(part).fullmatch(value) is not None for part, value in zip(wanted, given, strict=True)
    )


def _strings(value: Any, where: str) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(item, str) for item in items):
        raise UnsupportedPolicy(f"{where}: expected a string or a list of strings, got {value!r}")
    return tuple(items)


def _principals(value: Any, where: str) -> tuple[str, ...]:
    if value == "*":
        return ("*",)
    if not isinstance(value, dict) or not value or not set(value) <= {"AWS", "Service"}:
        raise UnsupportedPolicy(f"{where}: Principal {value!r} is not supported (only '*', AWS ARNs, Service)")
    principals = [f"service:{name}" for name in _strings(value.get("Service", []), where)] if "Service" in value else []
    for arn in _strings(value["AWS"], where) if "AWS" in value else ():
        if arn != "*" and not re.fullmatch(r"arn:aws:(iam|sts)::\d{12}:(role|user|assumed-role)/.+", arn):
            raise UnsupportedPolicy(f"{where}: principal {arn!r} is not supported (account and root principals)")
        principals.append(arn)
    return tuple(principals)


def _conditions(value: Any, where: str) -> dict[str, dict[str, tuple[str, ...]]]:
    if not isinstance(value, dict):
        raise UnsupportedPolicy(f"{where}: Condition must be a mapping, got {value!r}")
    return {
        operator: {key: _strings(values, f"{where}.{operator}.{key}") for key, values in block.items()}
        for operator, block in value.items()
    }


def parse_statements(document: Any, where: str, *, resource_policy: bool) -> list[Statement]:
    """A resolved policy document's statements; raises UnsupportedPolicy on any element not evaluated."""
    if not isinstance(document, dict) or not set(document) <= {"Version", "Id", "Statement"}:
        raise UnsupportedPolicy(f"{where}: not a policy document: {document!r}")
    raw_statements = document.get("Statement", [])
    raw_statements = raw_statements if isinstance(raw_statements, list) else [raw_statements]
    statements = []
    for number, raw in enumerate(raw_statements):
        here = f"{where}.Statement[{raw.get('Sid', number) if isinstance(raw, dict) else number}]"
        if not isinstance(raw, dict) or not set(raw) <= _STATEMENT_KEYS:
            unsupported = sorted(set(raw) - _STATEMENT_KEYS) if isinstance(raw, dict) else raw
            raise UnsupportedPolicy(f"{here}: {unsupported} not supported")
        if raw.get("Effect") not in ("Allow", "Deny"):
            raise UnsupportedPolicy(f"{here}: Effect must be Allow or Deny, got {raw.get('Effect')!r}")
        if resource_policy != ("Principal" in raw):
            raise UnsupportedPolicy(f"{here}: Principal belongs in resource policies, and only there")
        statements.append(
            Statement(
                effect=raw["Effect"],
                actions=_strings(raw.get("Action"), f"{here}.Action"),
                resources=_strings(raw.get("Resource"), f"{here}.Resource"),
                principals=_principals(raw["Principal"], here) if resource_policy else None,
                conditions=_conditions(raw.get("Condition", {}), f"{here}.Condition"),
                where=here,
            )
        )
    return statements


def _condition_holds(statement: Statement, caller: Caller) -> bool:
    for operator, block in statement.conditions.items():
        kind = _POSITIVE.get(operator) or _NEGATED.get(operator)
        if kind is None:
            raise UnsupportedPolicy(f"{statement.where}: condition operator {operator} is not supported")
        for key, values in block.items():
            if key.lower() != "aws:principalarn":
                raise UnsupportedPolicy(f"{statement.where}: condition key {key} is not supported")
            given = caller.principal_arn
            hit = any(given == value if kind == "string" else arn_matches(value, given) for value in values)
            if hit == (operator in _NEGATED):
                return False
    return True


def _principal_matches(statement: Statement, caller: Caller) -> bool:
    return any(principal in ("*", caller.principal_arn) for principal in statement.principals or ())


def _applies(statement: Statement, caller: Caller, action: str, resource: str) -> bool:
    return (
        any(action_matches(pattern, action) for pattern in statement.actions)
        and any(arn_matches(pattern, resource) for pattern in statement.resources)
        and (statement.principals is None or _principal_matches(statement, caller))
        and _condition_holds(statement, caller)
    )


def denial_message(caller: Caller, action: str, resource: str, why: str) -> str:
    return f"User: {caller.session_arn} is not authorized to perform: {action} on resource: {resource} {why}"


@functools.cache
def _repository_template() -> dict[str, Any]:
    return load_template()


class RoleCheck:
    """Decides each (caller, action, resource) as IAM would with the template's roles and resource policies.

    `secrets` binds the template's secrets (SigningSecret, ApiKeySecret) to local ids; a
    secret left unbound stands for one that exists nowhere. `resolve_arn` turns an id
    (name, partial or full ARN) into the secret's ARN; the proxy sets it.
    """

    def __init__(
        self,
        template: dict[str, Any] | None = None,
        *,
        parameters: dict[str, str] | None = None,
        secrets: dict[str, str] | None = None,
        resolve_arn: Callable[[str], str] | None = None,
    ) -> None:
        self.template = template if template is not None else _repository_template()
        self.parameters = dict(parameters or {})
        self.secrets = dict(secrets or {})
        self.resolve_arn: Callable[[str], str] = resolve_arn or (lambda secret_id: secret_id)
        resources = self.template["Resources"]
        self.roles = sorted(name for name, spec in resources.items() if spec.get("Type") == _ROLE_TYPE)
        for name, spec in resources.items():
            if spec.get("Type") in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::RolePolicy"):
                raise UnsupportedPolicy(f"{name}: separate policy resources are not evaluated; put them in the role")
        for role in self.roles:
            properties = resources[role].get("Properties", {})
            if "ManagedPolicyArns" in properties:
                raise UnsupportedPolicy(f"{role}: ['ManagedPolicyArns'] not evaluated")
            # PermissionsBoundaryArn's !If leaves no boundary by default; a set boundary's policy is not known here.
            boundary = self._resolver().resolve({"PermissionsBoundary": properties.get("PermissionsBoundary")}, role)
            if boundary.get("PermissionsBoundary") is not None:
                raise UnsupportedPolicy(
                    f"{role}: a permissions boundary ({boundary['PermissionsBoundary']}) not evaluated"
                )

    def with_template(self, template: dict[str, Any]) -> RoleCheck:
        return RoleCheck(template, parameters=self.parameters, secrets=self.secrets, resolve_arn=self.resolve_arn)

    def bind(self, **secrets: str) -> None:
        self.secrets.update(secrets)

    def bind_default(self, **secrets: str) -> None:
        for name, secret_id in secrets.items():
            self.secrets.setdefault(name, secret_id)

    def caller(self, key_id: str) -> Caller | None:
        """The role session behind an access key id; None for the admin."""
        if key_id == ADMIN_ACCESS_KEY_ID:
            return None
        for role in self.roles:
            if key_id == access_key_id(role):
                return Caller(role)
        raise UnknownCaller(key_id)

    def decide(self, caller: Caller, action: str, resource: str) -> Decision:
        identity = self.identity_statements(caller.role)
        attached = self.resource_statements(resource)
        denied_by = [
            kind
            for kind, statements in (("an identity-based", identity), ("a resource-based", attached))
            if any(s.effect == "Deny" and _applies(s, caller, action, resource) for s in statements)
        ]
        if denied_by:
            why = f"with an explicit deny in {denied_by[0]} policy"
            return Decision(False, denial_message(caller, action, resource, why))
        if any(s.effect == "Allow" and _applies(s, caller, action, resource) for s in [*identity, *attached]):
            return Decision(True)
        why = f"because no identity-based policy allows the {action} action"
        return Decision(False, denial_message(caller, action, resource, why))

    def identity_statements(self, role: str) -> list[Statement]:
        resolver = self._resolver()
        properties = self.template["Resources"][role].get("Properties", {})
        statements: list[Statement] = []
        for policy in resolver.resolve(properties.get("Policies", []), f"{role}.Policies"):
            where = f"{role}.{policy.get('PolicyName', 'policy')}"
            statements += parse_statements(policy["PolicyDocument"], where, resource_policy=False)
        return statements

    def resource_statements(self, resource: str) -> list[Statement]:
        """Statements of the resource policies attached to this secret."""
        resolver = self._resolver()
        statements: list[Statement] = []
        for name, spec in self.template["Resources"].items():
            if spec.get("Type") != _RESOURCE_POLICY_TYPE:
                continue
            properties = resolver.resolve(spec["Properties"], name)
            if self.resolve_arn(str(properties["SecretId"])) == resource:
                statements += parse_statements(properties["ResourcePolicy"], name, resource_policy=True)
        return statements

    def grants(self, role: str) -> set[tuple[str, str]]:
        """The (action, secret ARN) pairs the role's Allow statements name for Secrets Manager."""
        granted = set()
        for statement in self.identity_statements(role):
            actions = [a for a in statement.actions if a.lower().startswith("secretsmanager:")]
            if statement.effect != "Allow" or not actions:
                continue
            for action in actions:
                for resource in statement.resources:
                    if "*" in action + resource or "?" in action + resource:
                        raise UnsupportedPolicy(
                            f"{statement.where}: a wildcard grant ({action} on {resource}) is wider than any use"
                        )
                    granted.add((action, resource))
        return granted

    def _resolver(self) -> CloudFormationValues:
        resources = self.template["Resources"]
        secrets = {
            name: self.resolve_arn(self.secrets[name])
            if name in self.secrets
            else f"arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:<{name} not bound in this test>"
            for name, spec in resources.items()
            if spec.get("Type") == _SECRET_TYPE
        }

        def attribute(logical_id: str, name: str) -> str:
            if resources.get(logical_id, {}).get("Type") == _ROLE_TYPE and name == "Arn":
                return role_arn(logical_id)
            # Logs, queues...: never the resource of a Secrets Manager request, so any distinct ARN will do.
            return f"arn:aws:local:{REGION}:{ACCOUNT_ID}:{logical_id}/{name}"

        return CloudFormationValues(self.template, self.parameters, resources=secrets, attributes=attribute)


def secret_grants(template: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(role, action, secret logical id) for each Secrets Manager action a role grants on !Ref <secret>."""
    secrets = {name for name, spec in template["Resources"].items() if spec.get("Type") == _SECRET_TYPE}
    grants = []
    for role, spec in template["Resources"].items():
        if spec.get("Type") != _ROLE_TYPE:
            continue
        for policy in spec["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
                    continue
                resource = statement.get("Resource")
                if not isinstance(resource, dict):
                    continue
                if resource.get("Ref") in secrets:
                    actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                    grants += [(role, action, resource["Ref"]) for action in actions]
    return sorted(grants)


def without_action(template: dict[str, Any], role: str, action: str, resource_ref: str) -> dict[str, Any]:
    """A copy of the template whose role no longer grants `action` on !Ref `resource_ref`."""
    changed = copy.deepcopy(template)
    removed = 0
    for policy in changed["Resources"][role]["Properties"]["Policies"]:
        kept_statements = []
        for statement in policy["PolicyDocument"]["Statement"]:
            # Grants on a secret are written out, never under !If: only those are candidates.
            if isinstance(statement, dict) and statement.get("Resource") == {"Ref": resource_ref}:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                kept = [a for a in actions if a != action]
                removed += len(actions) - len(kept)
                if not kept:
                    continue
                statement["Action"] = kept
            kept_statements.append(statement)
        policy["PolicyDocument"]["Statement"] = kept_statements
    if not removed:
        raise ValueError(f"{role} grants no {action} on {resource_ref}")
    return changed
