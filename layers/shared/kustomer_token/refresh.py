"""Keep SigningSecret equal to the secret Kustomer holds, never making things worse.

Two triggers, one fetch:
- a scheduled run: fetch -> validate -> compare with AWSCURRENT -> write only if changed,
  then withdraw the rotations that never finished (below);
- a Secrets Manager rotation: createSecret / setSecret / testSecret / finishSecret, where
  testSecret reads Kustomer again: the pending value goes live only while Kustomer still holds it.

Any failure raises (so retries, the dead-letter queue and alarms see it) and
leaves the signing secret as it was: nothing is written before the value from
Kustomer has passed every check. Only AWSPENDING labels are ever taken off, and
never AWSCURRENT or a value:
- a reattempted rotation whose pending value Kustomer no longer holds can never finish
  (a version's value cannot change), so createSecret removes its AWSPENDING label and
  the next rotation starts afresh;
- a rotation that failed (the first deploy's, before the API key is stored; Kustomer down;
  a testSecret mismatch) leaves AWSPENDING on a version that is not AWSCURRENT, and while
  it is there Secrets Manager refuses every RotateSecret ("A previous rotation isn't
  complete"), a stack update's included. So once a scheduled run has stored (or found)
  Kustomer's value as AWSCURRENT, it takes AWSPENDING off every such version older than
  ROTATION_ENDED_AFTER_SECONDS, whatever it holds: none, a value Kustomer no longer holds
  (that rotation can never finish), or Kustomer's value, already AWSCURRENT (what that
  rotation's finishSecret would end in). A younger one may belong to a rotation still
  running and is left to it. Should Secrets Manager still run a withdrawn rotation's
  steps, each fails with NotPending and changes nothing, and the next RotateSecret is
  accepted. A failure of this clean-up raises, after the value is stored: the write stays,
  and the retry finds the value unchanged and tries the clean-up again.
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
from kustomer_token.secret_value import secret_problem
from kustomer_token.secrets_store import CURRENT, PENDING, SecretStore, VersionLabels, default_client
from kustomer_token.settings import RefreshSettings

# Seconds of the invocation kept for the Secrets Manager reads and writes after the Kustomer call.
SECRETS_MANAGER_RESERVE_SECONDS = 8.0
ROTATION_STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
# Secrets Manager runs a rotation's four steps one after another, each within this function's 60 s
# timeout: an AWSPENDING version older than 10 minutes belongs to a rotation that has ended.
ROTATION_ENDED_AFTER_SECONDS = 600.0


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
    def __init__(
        self,
        settings: RefreshSettings,
        store: SecretStore,
        kustomer: KustomerSettingsClient,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._store = store
        self._kustomer = kustomer
        self._clock = clock  # wall-clock seconds, compared with the CreatedDate Secrets Manager gives a version

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
        """fetch -> validate -> compare -> write-if-changed, then withdraw abandoned rotations.

        Returns {changed, versionId}.
        """
        secret_id = self._settings.signing_secret_id
        api_key = self._read_api_key()
        value = self._kustomer.fetch_signing_secret(api_key, deadline=deadline)
        token = version_token(api_key, value)
        versions = self._store.labelled_versions(secret_id)
        if any(version.version_id == token and CURRENT in version.stages for version in versions):
            # AWSCURRENT is the version this value gets from this key: a version's value never changes, so it
            # is this value, and there is nothing to read (most runs: one Secrets Manager call fewer).
            stored = self._unchanged(value, token)
        else:
            stored = self._store_kustomers_secret(secret_id, value, token)
            versions = self._store.labelled_versions(secret_id)  # the write moved labels
        # Only once Kustomer's value is AWSCURRENT: a failure here raises (alarms, retries) and the write stays.
        self._withdraw_abandoned_rotations(secret_id, versions)
        return stored

    def _unchanged(self, value: str, version_id: str) -> dict[str, Any]:
        count_refresh_outcome(changed=False)
        logger.info(
            "signing secret unchanged",
            extra={"secret_fingerprint": secret_fingerprint(value), "version_id": version_id},
        )
        return {"changed": False, "versionId": version_id}

    def _store_kustomers_secret(self, secret_id: str, value: str, token: str) -> dict[str, Any]:
        # AWSCURRENT is another version: someone stored a value by hand (a random id), the API key changed, or
        # Kustomer's value did. Only reading it tells.
        current = self._store.read(secret_id, stage=CURRENT)
        if current is not None and current.value == value:
            return self._unchanged(value, current.version_id)
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

    def _withdraw_abandoned_rotations(self, secret_id: str, versions: list[VersionLabels]) -> None:
        """Takes AWSPENDING off every version, not AWSCURRENT, that a rotation left and can no longer be running."""
        now = self._clock()
        for version in versions:
            if PENDING not in version.stages or CURRENT in version.stages:
                continue
            age = None if version.created_at is None else max(0.0, now - version.created_at)
            if age is None or age < ROTATION_ENDED_AFTER_SECONDS:
                logger.info(
                    "rotation may be in progress: AWSPENDING left as it is",
                    extra={"version_id": version.version_id, "age_seconds": None if age is None else round(age)},
                )
                continue
            self._store.clear_pending(secret_id, version=version.version_id)
            logger.warning(
                "AWSPENDING removed from a version an unfinished rotation left",
                extra={"version_id": version.version_id, "age_seconds": round(age), "reason": "RotationAbandoned"},
            )

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
