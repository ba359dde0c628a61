"""A secret's versions and labels, read as the account's admin, in a form a test compares and prints safely.

Values appear only as the names a test gave them ("A", "B") or as a short fingerprint, never
as themselves: a failing assertion prints both sides, and that output must hold no secret.
"""

from __future__ import annotations

import hashlib
from typing import Any

from botocore.exceptions import ClientError

Labels = tuple[str, ...]
# version id -> (its labels, sorted; the name of its value, or None while it has no value)
Snapshot = dict[str, tuple[Labels, str | None]]


def state(*pairs: tuple[str | None, Labels]) -> list[tuple[str | None, Labels]]:
    """A state as `SecretVersions.by_value` gives it: (value name, labels) pairs in its order."""
    return sorted(pairs, key=_order)


def _order(pair: tuple[str | None, Labels]) -> tuple[str, Labels]:
    return (pair[0] or "", pair[1])


def fingerprint(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:12]


class SecretVersions:
    def __init__(self, admin: Any, secret_id: str) -> None:
        self._admin = admin
        self._secret_id = secret_id
        self._names: dict[str, str] = {}
        self._values: dict[str, str] = {}  # version id -> value name; a version's value never changes once set

    def name(self, label: str, value: str) -> str:
        """Shows `value` as `label` in every snapshot; returns the value."""
        self._names[fingerprint(value)] = label
        return value

    def value_name(self, value: str) -> str:
        return self._names.get(fingerprint(value), f"value:{fingerprint(value)}")

    def snapshot(self) -> Snapshot:
        """Every version, labelled or not, with its labels and the name of its value."""
        found: Snapshot = {}
        request: dict[str, Any] = {"SecretId": self._secret_id, "IncludeDeprecated": True, "MaxResults": 100}
        while True:
            page = self._admin.list_secret_version_ids(**request)
            for version in page["Versions"]:
                version_id = version["VersionId"]
                found[version_id] = (tuple(sorted(version.get("VersionStages") or [])), self._value_of(version_id))
            if not page.get("NextToken"):
                return found
            request["NextToken"] = page["NextToken"]

    def by_value(self) -> list[tuple[str | None, Labels]]:
        """The snapshot without version ids: (value name, labels) pairs, sorted; for states reached by different ids."""
        return state(*((value, labels) for labels, value in self.snapshot().values()))

    def current(self) -> str | None:
        """The name of the AWSCURRENT value, or None when no version holds AWSCURRENT."""
        return next((value for labels, value in self.snapshot().values() if "AWSCURRENT" in labels), None)

    def _value_of(self, version_id: str) -> str | None:
        if version_id not in self._values:
            try:
                answer = self._admin.get_secret_value(SecretId=self._secret_id, VersionId=version_id)
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                    raise
                return None  # a version Secrets Manager made without a value (RotateSecret's AWSPENDING)
            self._values[version_id] = self.value_name(answer["SecretString"])
        return self._values[version_id]
