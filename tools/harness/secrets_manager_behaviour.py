"""moto's Secrets Manager, corrected where it differs from AWS in what the refresher meets.

`apply()` patches moto's backend in the moto server process (services.MotoServer starts
it that way), so every test and `make demo` see one behaviour. Each change follows the
AWS Secrets Manager API Reference:

- RotateSecret refuses while AWSPENDING is on a version without AWSCURRENT: "If the
  AWSPENDING staging label is present but not attached to the same version as AWSCURRENT,
  then any later invocation of RotateSecret assumes that a previous rotation request is
  still in progress and returns an error" (API_RotateSecret). The error is
  InvalidRequestException "A previous rotation isn't complete. That rotation will be
  reattempted.", as AWS words it (quoted in terraform-provider-aws's acceptance tests).
  moto instead refuses when AWSPENDING sits on the AWSCURRENT version, which AWS names
  one of the two states a successful rotation ends in.
- RotateSecret first makes a version with AWSPENDING and no value, with the
  ClientRequestToken as its id, even when the secret has no version yet (moto makes none
  then): "During rotation, Secrets Manager creates an AWSPENDING version ID before creating
  the new secret version. To check if a secret version exists, call GetSecretValue"
  (DescribeSecret, VersionIdsToStages); "When rotation is unsuccessful, the AWSPENDING
  staging label might be attached to an empty secret version" (API_RotateSecret).
- UpdateSecretVersionStage moves AWSCURRENT without RemoveFromVersionId when no version
  holds it (moto raises IndexError): RemoveFromVersionId is needed only "If the staging
  label is already attached to a different version of the secret"
  (API_UpdateSecretVersionStage). moto's default version follows AWSCURRENT, so a later
  PutSecretValue marks the right version AWSPREVIOUS (moto left two AWSCURRENT versions).
- PutSecretValue never changes a version that has a value: "If you call this operation
  with a ClientRequestToken that matches an existing version's VersionId, and you specify
  the same secret data, the operation succeeds but does nothing. However, if the secret
  data is different, then the operation fails because you cannot modify an existing
  version" (API_PutSecretValue). moto overwrote AWSPENDING versions.
- ListSecretVersionIds gives each version's CreatedDate, "The date and time this version
  of the secret was created" (API_ListSecretVersionIds, SecretVersionsListEntry); moto
  answered the time of the call for every version. And it leaves out versions with no
  staging label unless IncludeDeprecated is true ("Specifies whether to include versions of
  secrets that don't have any staging labels attached to them"); moto listed every version.
- GetSecretValue of a stage no version holds answers ResourceNotFoundException "Secrets
  Manager can't find the specified secret value for staging label: <stage>", as for a
  version without a value, not "can't find the specified secret" (which AWS keeps for a
  secret that does not exist).

Not emulated: Secrets Manager invoking the rotation function (asynchronously, after
RotateSecret answers) and reattempting an incomplete rotation. moto cannot run our
function: it answers ResourceNotFoundException for it after making the AWSPENDING
version, and tools.harness.rotation plays that part instead.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

PREVIOUS_ROTATION_INCOMPLETE = "A previous rotation isn't complete. That rotation will be reattempted."
CURRENT, PENDING, PREVIOUS = "AWSCURRENT", "AWSPENDING", "AWSPREVIOUS"


def apply() -> None:
    from moto.secretsmanager import exceptions, models, responses

    backend: Any = models.SecretsManagerBackend
    original_rotate = backend.rotate_secret
    original_update_stage = backend.update_secret_version_stage
    original_put = backend.put_secret_value
    original_get = backend.get_secret_value
    original_list_versions = backend.list_secret_version_ids

    def live_secret(self: Any, secret_id: str) -> Any:
        secret = self.secrets.get(secret_id) if self._is_valid_identifier(secret_id) else None
        return secret if isinstance(secret, models.FakeSecret) and not secret.is_deleted() else None

    def rotate_secret(
        self: Any,
        secret_id: str,
        client_request_token: str | None = None,
        rotation_lambda_arn: str | None = None,
        rotation_rules: dict[str, Any] | None = None,
        rotate_immediately: bool = True,
    ) -> str:
        secret = live_secret(self, secret_id)
        if secret is not None:
            for version in secret.versions.values():
                if PENDING in version["version_stages"] and CURRENT not in version["version_stages"]:
                    raise exceptions.InvalidRequestException(PREVIOUS_ROTATION_INCOMPLETE)
            for version in secret.versions.values():
                if PENDING in version["version_stages"]:
                    version["version_stages"].remove(PENDING)  # a finished rotation's label, moved by this one
            client_request_token = client_request_token or str(uuid.uuid4())
            if not secret.versions:
                self._client_request_token_validator(client_request_token)
                secret.versions[client_request_token] = {
                    "createdate": int(time.time()),
                    "version_id": client_request_token,
                    "version_stages": [PENDING],
                }
        result: str = original_rotate(
            self, secret_id, client_request_token, rotation_lambda_arn, rotation_rules, rotate_immediately
        )
        return result

    def update_secret_version_stage(
        self: Any, secret_id: str, version_stage: str, remove_from_version_id: str, move_to_version_id: str
    ) -> tuple[str, str]:
        secret = live_secret(self, secret_id)
        if secret is None:
            result: tuple[str, str] = original_update_stage(
                self, secret_id, version_stage, remove_from_version_id, move_to_version_id
            )
            return result
        held = any(version_stage in version["version_stages"] for version in secret.versions.values())
        if version_stage == CURRENT and not remove_from_version_id and not held and move_to_version_id:
            if move_to_version_id not in secret.versions:
                raise exceptions.InvalidParameterException(f"Not a valid version: {move_to_version_id}")
            stages = secret.versions[move_to_version_id]["version_stages"]
            stages[:] = [stage for stage in stages if stage != PREVIOUS] + [CURRENT]
        else:
            original_update_stage(self, secret_id, version_stage, remove_from_version_id, move_to_version_id)
        current = [version_id for version_id, v in secret.versions.items() if CURRENT in v["version_stages"]]
        secret.default_version_id = current[0] if current else None
        return secret.arn, secret.name

    def put_secret_value(
        self: Any,
        secret_id: str,
        secret_string: str,
        secret_binary: str,
        client_request_token: str,
        version_stages: list[str],
    ) -> str:
        secret = live_secret(self, secret_id)
        version = secret.versions.get(client_request_token) if secret and client_request_token else None
        if version is not None and ("secret_string" in version or "secret_binary" in version):
            if version.get("secret_string") == secret_string and version.get("secret_binary") == secret_binary:
                answer: str = secret.to_short_dict(include_version_stages=True, version_id=client_request_token)
                return answer
            raise exceptions.ResourceExistsException(
                f"You can't use ClientRequestToken {client_request_token} because that value is already in use "
                f"for a version of secret {secret.arn}."
            )
        result: str = original_put(self, secret_id, secret_string, secret_binary, client_request_token, version_stages)
        return result

    def get_secret_value(self: Any, secret_id: str, version_id: str, version_stage: str) -> dict[str, Any]:
        try:
            answer: dict[str, Any] = original_get(self, secret_id, version_id, version_stage)
        except exceptions.SecretNotFoundException:
            if version_stage and not version_id and live_secret(self, secret_id) is not None:
                raise exceptions.SecretHasNoValueException(version_stage) from None
            raise
        return answer

    def list_secret_version_ids(self: Any, secret_id: str, include_deprecated: bool = False) -> str:
        answer: dict[str, Any] = json.loads(original_list_versions(self, secret_id))
        secret = live_secret(self, secret_id)
        if secret is not None:
            for version in answer.get("Versions") or []:
                created = secret.versions.get(version["VersionId"], {}).get("createdate")
                if created is not None:
                    version["CreatedDate"] = created
        if not include_deprecated and "Versions" in answer:
            answer["Versions"] = [version for version in answer["Versions"] if version.get("VersionStages")]
        return json.dumps(answer)

    def list_secret_version_ids_response(self: Any) -> str:
        include = self._get_param("IncludeDeprecated", if_none=False)
        answer: str = self.backend.list_secret_version_ids(
            secret_id=self._get_param("SecretId", if_none=""), include_deprecated=include is True
        )
        return answer

    backend.rotate_secret = rotate_secret
    backend.list_secret_version_ids = list_secret_version_ids
    response_class: Any = responses.SecretsManagerResponse
    response_class.list_secret_version_ids = list_secret_version_ids_response
    backend.update_secret_version_stage = update_secret_version_stage
    backend.put_secret_value = put_secret_value
    backend.get_secret_value = get_secret_value
