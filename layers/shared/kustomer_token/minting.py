"""Issue a login token: identity (by route) + signing secret + clock -> LoginToken."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from functools import cached_property, partial
from typing import Any

from kustomer_token.callers import caller_allowed
from kustomer_token.errors import CallerNotAllowed, InvalidRequest
from kustomer_token.identity import SERVER_TOKEN_REQUEST_SCHEMA, Identity, identity_from_body, identity_from_claims
from kustomer_token.observability import count_minted, logger
from kustomer_token.secret_cache import SigningSecretCache
from kustomer_token.secret_readers import ExtensionReader
from kustomer_token.settings import MintSettings
from kustomer_token.token import LoginToken, forget_signing_key, sign_login_token

MAX_BODY_BYTES = 4096


class TokenMinter:
    """One per container; routes call for_claims or for_body."""

    def __init__(
        self,
        settings: MintSettings,
        secret_cache: SigningSecretCache,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._secret_cache = secret_cache
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: MintSettings) -> TokenMinter:
        options: dict[str, Any] = {}
        if settings.signing_secret_source == "extension":  # nosec B105
            options["reader_factory"] = partial(ExtensionReader, settings.extension_port)
        cache = SigningSecretCache(
            settings.signing_secret_id,
            ttl_seconds=settings.secret_cache_ttl_seconds,
            max_stale_seconds=settings.secret_max_stale_seconds,
            **options,
        )
        minter = cls(settings, cache)
        if settings.snap_start:
            minter.prepare_for_snapshot()
        elif settings.reads_secret_at_init:
            cache.read_ahead()
        else:
            # Lambda starts INIT before extensions are ready, so the extension is read on the first request.
            cache.prime()
        return minter

    def prepare_for_snapshot(self) -> None:
        """SnapStart: the client goes into the snapshot; no secret does, and restores forget what they hold."""
        from snapshot_restore_py import register_after_restore

        self._secret_cache.prime()
        register_after_restore(self.after_restore)

    def after_restore(self) -> None:
        import random

        self._secret_cache.forget()
        forget_signing_key()
        random.seed()  # clones of one snapshot must not share the random state (retry jitter)

    def for_claims(self, claims: Mapping[str, Any] | None, *, route: str) -> LoginToken:
        """End users: the identity comes from the authorizer's verified claims only."""
        identity = identity_from_claims(
            claims,
            policy=self._settings.token_identity,
            external_id_claim=self._settings.external_id_claim,
            email_claim=self._settings.email_claim,
            require_email_verified=self._settings.require_email_verified,
            email_verified_claim=self._settings.email_verified_claim,
        )
        return self._mint(identity, route=route)

    def for_body(self, body: str | None, *, route: str, caller_arn: object) -> LoginToken:
        """Trusted back ends: only listed IAM callers; the identity comes from a validated JSON body."""
        if not caller_allowed(caller_arn, self._settings.server_token_callers):
            # The ARN is the caller's own and names no visitor: logged so an operator can allow it.
            logger.warning("server token caller not allowed", extra={"route": route, "caller": str(caller_arn)})
            raise CallerNotAllowed(
                "this IAM principal may not call this route: add its role or user ARN to the stack's "
                "ServerTokenCallers parameter (SERVER_TOKEN_CALLERS)"
            )
        return self._mint(identity_from_body(self._parse_body(body)), route=route, caller=str(caller_arn))

    def _mint(self, identity: Identity, *, route: str, caller: str | None = None) -> LoginToken:
        signing_secret = self._secret_cache.get()
        # iat is the clock at signing time, whole seconds, never taken from input.
        token = sign_login_token(identity, signing_secret, int(self._clock()))
        count_minted(route, identity.kind)
        audit: dict[str, str] = {
            "route": route,
            "identity_type": identity.kind,
            "identity_fingerprint": identity.fingerprint(),
        }
        if caller is not None:
            audit["caller"] = caller
        logger.info("token minted", extra=audit)
        return token

    def _parse_body(self, body: str | None) -> dict[str, Any]:
        if not body:
            raise InvalidRequest('the body must be JSON: {"externalId": "..."} or {"email": "..."}')
        if len(body.encode("utf-8", "surrogatepass")) > MAX_BODY_BYTES:
            raise InvalidRequest(f"the body is larger than {MAX_BODY_BYTES} bytes")
        try:
            parsed = json.loads(body)
        except ValueError:
            raise InvalidRequest("the body is not valid JSON") from None
        import fastjsonschema

        try:
            return self._validate_body(parsed)  # type: ignore[no-any-return]
        except fastjsonschema.JsonSchemaValueException as exc:
            # exc.message names the field and rule, never the value sent.
            raise InvalidRequest(f"the body is not valid: {exc.message.replace('data', 'body', 1)}") from None

    @cached_property
    def _validate_body(self) -> Callable[[Any], Any]:
        # fastjsonschema is the validator Powertools' validation utility uses; compiled once per container.
        import fastjsonschema

        return fastjsonschema.compile(SERVER_TOKEN_REQUEST_SCHEMA)
