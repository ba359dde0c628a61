"""Keep SigningSecret equal to the secret Kustomer holds, never making things worse.

Two triggers, one fetch:
- a scheduled run: fetch -> validate -> compare with AWSCURRENT -> write only if changed;
- a Secrets Manager rotation: createSecret / setSecret / testSecret / finishSecret, where
  testSecret reads Kustomer again: the pending value goes live only while Kustomer still holds it.

Any failure raises (so retries, the dead-letter queue and alarms see it) and
leaves the signing secret as it was: nothing is written before the value from
Kustomer has passed every check. One failure takes a label off: a reattempted
rotation whose pending value Kustomer no longer holds can never finish (a
version's value cannot change), so createSecret removes its AWSPENDING label,
leaving AWSCURRENT and every value as they were, and the next rotation starts afresh.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from kustomer_token.kustomer import KustomerError, KustomerSettingsClient
from kustomer_token.observability import count_refresh_failed, count_refresh_outcome, logger, secret_fingerprint
from kustomer_token.secrets_store import CURRENT, PENDING, SecretStore, default_client
from kustomer_token.settings import RefreshSettings
from kustomer_token.signing_secret import secret_problem

# Seconds of the invocation kept for the Secrets Manager reads and writes after the Kustomer call.
SECRETS_MANAGER_RESERVE_SECONDS = 8.0
ROTATION_STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")


class RefreshError(Exception):
    """The refresh cannot go on; `reason` is a short metric dimension. Nothing was written."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def version_token(api_key: str, signing_secret: str) -> str:
    """The ClientRequestToken of a value: the same value always gets the same version.

    Keyed with the API key, so a version id is no oracle for guessing the secret.
    """
    digest = hmac.new(api_key.encode("utf-8"), signing_secret.encode("utf-8"), hashlib.sha256).digest()
    return str(uuid.UUID(bytes=digest[:16]))


class SecretRefresher:
    def __init__(self, settings: RefreshSettings, store: SecretStore, kustomer: KustomerSettingsClient) -> None:
        self._settings = settings
        self._store = store
        self._kustomer = kustomer

    @classmethod
    def from_settings(cls, settings: RefreshSettings) -> SecretRefresher:
        return cls(settings, SecretStore(default_client()), KustomerSettingsClient(settings.kustomer_api_base_url))

    def handle(self, event: object, remaining_seconds: float) -> dict[str, Any]:
        """Runs the trigger the event stands for; raises on any failure."""
        deadline = time.monotonic() + max(0.0, remaining_seconds - SECRETS_MANAGER_RESERVE_SECONDS)
        try:
            if not isinstance(event, Mapping):
                raise RefreshError(
                    f"unrecognised event ({type(event).__name__}): expected a scheduler event (a JSON object) "
                    "or a Secrets Manager rotation event",
                    "BadEvent",
                )
            if any(key in event for key in ("Step", "ClientRequestToken", "SecretId")):
                return self.rotate(event, deadline)
            return self.refresh(deadline)
        except (RefreshError, KustomerError) as exc:
            count_refresh_failed(exc.reason)
            logger.error("secret refresh failed", extra={"reason": exc.reason, "error": str(exc)})
            raise
        except Exception as exc:
            count_refresh_failed(type(exc).__name__)
            logger.exception("secret refresh failed", extra={"reason": type(exc).__name__})
            raise

    # --- scheduled -------------------------------------------------------------------------------

    def refresh(self, deadline: float) -> dict[str, Any]:
        """fetch -> validate -> compare -> write-if-changed. Returns {changed, versionId}."""
        secret_id = self._settings.signing_secret_id
        api_key = self._read_api_key()
        value = self._kustomer.fetch_signing_secret(api_key, deadline=deadline)
        current = self._store.read(secret_id, stage=CURRENT)
        if current is not None and current.value == value:
            count_refresh_outcome(changed=False)
            logger.info(
                "signing secret unchanged",
                extra={"secret_fingerprint": secret_fingerprint(value), "version_id": current.version_id},
            )
            return {"changed": False, "versionId": current.version_id}

        token = version_token(api_key, value)
        stages = self._store.put(secret_id, value, token=token)
        if CURRENT not in stages:
            # This value was stored before (A, B, then A again): make that version current once more.
            self._store.move_current(secret_id, to_version=token, from_version=current.version_id if current else None)
        count_refresh_outcome(changed=True)
        logger.info(
            "signing secret changed",
            extra={
                "secret_fingerprint": secret_fingerprint(value),
                "previous_fingerprint": secret_fingerprint(current.value) if current and current.value else None,
                "version_id": token,
            },
        )
        return {"changed": True, "versionId": token}

    def _read_api_key(self) -> str:
        secret_id = self._settings.api_key_secret_id
        stored = self._store.read(secret_id, stage=CURRENT)
        api_key = (stored.value or "").strip() if stored else ""
        if not api_key:
            raise RefreshError(
                f"the API key secret {secret_id} holds no value yet (or no longer exists): store a Kustomer API key "
                "with the org.admin and org.user roles in it (the stack's StoreApiKeyCommand output shows the command)",
                "ApiKeyMissing",
            )
        return api_key

    # --- rotation --------------------------------------------------------------------------------

    def rotate(self, event: Mapping[str, Any], deadline: float) -> dict[str, Any]:
        secret_id, token, step = _rotation_fields(event)
        # Only the configured signing secret is ever described or written, whatever the event names.
        metadata = self._store.describe(self._settings.signing_secret_id)
        if secret_id not in (self._settings.signing_secret_id, metadata.get("ARN"), metadata.get("Name")):
            raise RefreshError(
                f"this function rotates only the signing secret {self._settings.signing_secret_id}, not {secret_id}",
                "WrongSecret",
            )
        versions: dict[str, list[str]] = metadata.get("VersionIdsToStages") or {}
        if token not in versions:
            raise RefreshError(f"version {token} is not a version of the signing secret", "UnknownVersion")
        if CURRENT in versions[token]:
            if PENDING in versions[token]:
                self._store.clear_pending(secret_id, version=token)  # a finishSecret cut short before this
            logger.info("rotation: version is already AWSCURRENT", extra={"step": step, "version_id": token})
            return {"step": step, "versionId": token, "changed": False}
        if PENDING not in versions[token]:
            raise RefreshError(f"version {token} is not AWSPENDING, so it cannot be rotated to", "NotPending")

        steps: dict[str, Callable[[str, str, float], None]] = {
            "createSecret": self._create_secret,
            "setSecret": self._set_secret,
            "testSecret": self._test_secret,
            "finishSecret": self._finish_secret,
        }
        steps[step](secret_id, token, deadline)
        logger.info("rotation step done", extra={"step": step, "version_id": token})
        return {"step": step, "versionId": token}

    def _create_secret(self, secret_id: str, token: str, deadline: float) -> None:
        pending = self._store.read(secret_id, stage=PENDING, version_id=token)
        value = self._kustomer.fetch_signing_secret(self._read_api_key(), deadline=deadline)
        if pending is None or pending.value is None:
            self._store.put(secret_id, value, token=token, stages=[PENDING])
            logger.info("rotation: pending value stored", extra={"secret_fingerprint": secret_fingerprint(value)})
            return
        if _same_secret(pending.value, value):
            return  # a reattempted rotation whose pending value Kustomer still holds
        # A version's value never changes, so this rotation can never finish: withdraw it; the next starts afresh.
        self._store.clear_pending(secret_id, version=token)
        raise RefreshError(
            f"Kustomer's secret changed since this rotation stored its pending version {token}; that version was "
            "withdrawn (AWSPENDING removed) and AWSCURRENT left as it was: the next scheduled run or rotation "
            "stores Kustomer's secret",
            "PendingOutdated",
        )

    def _set_secret(self, secret_id: str, token: str, deadline: float) -> None:
        """Kustomer owns the secret: there is nothing to set on its side."""

    def _test_secret(self, secret_id: str, token: str, deadline: float) -> None:
        """The pending value must still be the one Kustomer holds; writes nothing."""
        pending = self._store.read(secret_id, stage=PENDING, version_id=token)
        value = pending.value if pending else None
        if value is None:
            raise RefreshError("the pending signing secret is missing", "PendingUnusable")
        problem = secret_problem(value)
        if problem:
            raise RefreshError(f"the pending signing secret {problem}", "PendingUnusable")
        held = self._kustomer.fetch_signing_secret(self._read_api_key(), deadline=deadline)
        if not _same_secret(value, held):
            raise RefreshError(
                "Kustomer no longer holds the pending signing secret (it changed during this rotation), so it is not "
                "made current; nothing was changed. The next attempt of this rotation withdraws it, and the next "
                "scheduled run stores Kustomer's secret",
                "PendingOutdated",
            )

    def _finish_secret(self, secret_id: str, token: str, deadline: float) -> None:
        versions: dict[str, list[str]] = self._store.describe(secret_id).get("VersionIdsToStages") or {}
        current = next((version for version, stages in versions.items() if CURRENT in stages), None)
        if current != token:
            pending = self._store.read(secret_id, stage=PENDING, version_id=token)
            now_current = self._store.read(secret_id, stage=CURRENT) if current else None
            if pending is not None and now_current is not None and now_current.value == pending.value:
                # A scheduled run already stored this value: keep that version current, so each
                # distinct value lives in one version; the pending one is left without labels.
                count_refresh_outcome(changed=False)
                logger.info("rotation: Kustomer's secret is already current", extra={"version_id": current})
            else:
                self._store.move_current(secret_id, to_version=token, from_version=current)
                count_refresh_outcome(changed=True)
        if PENDING in versions.get(token, []):
            # Both documented end states are valid; "no AWSPENDING anywhere" is the one every reader agrees on.
            self._store.clear_pending(secret_id, version=token)


def _rotation_fields(event: Mapping[str, Any]) -> tuple[str, str, str]:
    secret_id, token, step = event.get("SecretId"), event.get("ClientRequestToken"), event.get("Step")
    if not (isinstance(secret_id, str) and secret_id and isinstance(token, str) and token):
        raise RefreshError("a rotation event needs SecretId and ClientRequestToken strings", "BadEvent")
    if step not in ROTATION_STEPS:
        raise RefreshError(f"unknown rotation step {step!r}: expected one of {', '.join(ROTATION_STEPS)}", "BadEvent")
    return secret_id, token, str(step)


def _same_secret(stored: str, held: str) -> bool:
    return hmac.compare_digest(stored.encode("utf-8"), held.encode("utf-8"))
