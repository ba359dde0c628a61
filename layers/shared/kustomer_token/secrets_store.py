"""Secrets Manager I/O for the refresher: a thin adapter, no policy.

Reads always name a staging label or version explicitly (AWSCURRENT is never
left to the API's default).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

CURRENT = "AWSCURRENT"
PENDING = "AWSPENDING"


@dataclass(frozen=True, slots=True)
class StoredVersion:
    version_id: str
    value: str | None = field(repr=False)


@dataclass(frozen=True, slots=True)
class VersionLabels:
    """A labelled version as ListSecretVersionIds gives it: no value, its labels and when it was made."""

    version_id: str
    stages: tuple[str, ...]
    created_at: float | None  # seconds since the epoch; None if Secrets Manager gave no date


def is_not_found(exc: BaseException) -> bool:
    response = getattr(exc, "response", None)
    return isinstance(response, dict) and response.get("Error", {}).get("Code") == "ResourceNotFoundException"


def default_client() -> Any:
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=2, read_timeout=2, retries={"mode": "standard", "total_max_attempts": 3})
    return boto3.client("secretsmanager", config=config)


class SecretStore:
    def __init__(self, client: Any) -> None:
        self._client = client

    def read(self, secret_id: str, *, stage: str = CURRENT, version_id: str | None = None) -> StoredVersion | None:
        """The version with this label (and id), or None when Secrets Manager has no value for it.

        A secret without a value and a secret that does not exist answer the same
        ResourceNotFoundException; telling them apart would take DescribeSecret, which the
        refresher's role is not granted on the API key secret (least privilege). No caller
        needs it: a missing signing secret fails the write that follows.
        """
        request: dict[str, Any] = {"SecretId": secret_id, "VersionStage": stage}
        if version_id is not None:
            request["VersionId"] = version_id
        try:
            answer = self._client.get_secret_value(**request)
        except Exception as exc:
            if is_not_found(exc):
                return None
            raise
        value = answer.get("SecretString")
        return StoredVersion(version_id=answer["VersionId"], value=value if isinstance(value, str) else None)

    def put(self, secret_id: str, value: str, *, token: str, stages: list[str] | None = None) -> list[str]:
        """Writes a version under `token` and returns its labels (idempotent for the same token and value)."""
        request: dict[str, Any] = {"SecretId": secret_id, "SecretString": value, "ClientRequestToken": token}
        if stages is not None:
            request["VersionStages"] = stages
        answer = self._client.put_secret_value(**request)
        return list(answer.get("VersionStages") or [])

    def move_current(self, secret_id: str, *, to_version: str, from_version: str | None) -> None:
        """Makes `to_version` AWSCURRENT; Secrets Manager moves AWSPREVIOUS itself."""
        request: dict[str, Any] = {"SecretId": secret_id, "VersionStage": CURRENT, "MoveToVersionId": to_version}
        if from_version is not None:
            request["RemoveFromVersionId"] = from_version
        self._client.update_secret_version_stage(**request)

    def clear_pending(self, secret_id: str, *, version: str) -> None:
        """Takes AWSPENDING off a finished (or abandoned) version, so no rotation looks in progress."""
        self._client.update_secret_version_stage(SecretId=secret_id, VersionStage=PENDING, RemoveFromVersionId=version)

    def labelled_versions(self, secret_id: str) -> list[VersionLabels]:
        """Every version that carries a staging label (ListSecretVersionIds leaves unlabelled ones out)."""
        found: list[VersionLabels] = []
        request: dict[str, Any] = {"SecretId": secret_id}
        while True:
            answer = self._client.list_secret_version_ids(**request)
            for version in answer.get("Versions") or []:
                created = version.get("CreatedDate")
                found.append(
                    VersionLabels(
                        version_id=version["VersionId"],
                        stages=tuple(version.get("VersionStages") or ()),
                        created_at=created.timestamp() if created is not None else None,
                    )
                )
            if not answer.get("NextToken"):
                return found
            request["NextToken"] = answer["NextToken"]

    def describe(self, secret_id: str) -> dict[str, Any]:
        answer: dict[str, Any] = self._client.describe_secret(SecretId=secret_id)
        return answer
