"""The refresh function's handler, under its own role: settings at start, dispatch, metrics and logs."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from kustomer_token.kustomer import KustomerError, KustomerSettingsClient
from kustomer_token.observability import secret_fingerprint
from kustomer_token.refresh import RefreshError
from kustomer_token.settings import ConfigurationError
from tests.support.events import FakeLambdaContext
from tests.support.metrics import metric_total
from tools.harness.fake_kustomer import FakeKustomer, error_reply, secret_reply
from tools.harness.sm_proxy import SecretsManagerProxy


@pytest.fixture
def secrets_for_refresh(secretsmanager: Any, api_key: str) -> tuple[str, str]:
    signing = secretsmanager.create_secret(Name="SigningSecret")["ARN"]
    api = secretsmanager.create_secret(Name="ApiKeySecret", SecretString=api_key)["ARN"]
    return signing, api


@pytest.fixture
def app(
    start_refresher: Callable[..., ModuleType], secrets_for_refresh: tuple[str, str], kustomer: FakeKustomer
) -> ModuleType:
    """The refresh function started with the stack's two secrets and the fake Kustomer."""
    signing, api = secrets_for_refresh
    return start_refresher(SIGNING_SECRET_ID=signing, API_KEY_SECRET_ID=api, KUSTOMER_API_BASE_URL=kustomer.url)


def test_a_scheduled_run_through_the_handler(
    app: ModuleType,
    secrets_for_refresh: tuple[str, str],
    kustomer: FakeKustomer,
    new_signing_secret: Callable[[int], str],
    read_output: Callable[[], list[dict[str, Any]]],
    secretsmanager: Any,
    sm_proxy: SecretsManagerProxy,
) -> None:
    signing, _ = secrets_for_refresh
    secret = new_signing_secret(64)
    kustomer.answer(secret_reply(secret))
    read_output()
    first = app.lambda_handler({}, FakeLambdaContext())
    second = app.lambda_handler({"source": "scheduler"}, FakeLambdaContext())
    assert first["changed"] is True
    assert second == {"changed": False, "versionId": first["versionId"]}
    assert secretsmanager.get_secret_value(SecretId=signing, VersionStage="AWSCURRENT")["SecretString"] == secret
    output = read_output()
    assert metric_total(output, "SecretChanged") == 1
    assert metric_total(output, "SecretUnchanged") == 1
    assert metric_total(output, "RefreshSucceeded") == 2  # the heartbeat: every successful run, changed or not
    changed = [line for line in output if line.get("message") == "signing secret changed"]
    assert len(changed[0]["secret_fingerprint"]) == 12
    # Every Secrets Manager call was made as the refresher's role, and its role allowed each
    assert {call.role for call in sm_proxy.role_calls()} == {"RefreshSecretFunctionRole"}
    assert sm_proxy.role_calls(allowed=False) == []


def test_a_failed_run_raises_and_is_counted_by_reason(
    app: ModuleType,
    kustomer: FakeKustomer,
    read_output: Callable[[], list[dict[str, Any]]],
) -> None:
    kustomer.answer(error_reply(401, "Unauthorized"))
    read_output()
    with pytest.raises(Exception, match=r"org\.admin and org\.user"):
        app.lambda_handler({}, FakeLambdaContext())
    output = read_output()
    assert metric_total(output, "RefreshFailed", Reason="Unauthorized") == 1
    assert metric_total(output, "RefreshSucceeded") == 0  # a failed run is no heartbeat
    errors = [line for line in output if line.get("message") == "secret refresh failed"]
    assert errors[0]["reason"] == "Unauthorized"


def test_an_unknown_event_raises_a_clear_error(app: ModuleType, kustomer: FakeKustomer) -> None:
    with pytest.raises(RefreshError, match="unrecognised event"):
        app.lambda_handler(["not", "an", "object"], FakeLambdaContext())
    assert kustomer.settings_calls() == []


@pytest.mark.parametrize(
    ("environment", "named"),
    [
        ({"API_KEY_SECRET_ID": "a", "KUSTOMER_ORG": "acme"}, "SIGNING_SECRET_ID"),
        ({"SIGNING_SECRET_ID": "s", "KUSTOMER_ORG": "acme"}, "API_KEY_SECRET_ID"),
        ({"SIGNING_SECRET_ID": "s", "API_KEY_SECRET_ID": "a"}, "KUSTOMER_ORG"),
        ({"SIGNING_SECRET_ID": "s", "API_KEY_SECRET_ID": "a", "KUSTOMER_ORG": "Acme Inc"}, "KUSTOMER_ORG"),
        (
            {"SIGNING_SECRET_ID": "s", "API_KEY_SECRET_ID": "a", "KUSTOMER_API_BASE_URL": "http://api.example.com"},
            "KUSTOMER_API_BASE_URL",
        ),
        (
            {"SIGNING_SECRET_ID": "s", "API_KEY_SECRET_ID": "a", "KUSTOMER_API_BASE_URL": "ftp://x"},
            "KUSTOMER_API_BASE_URL",
        ),
    ],
)
def test_a_bad_setting_fails_the_cold_start_naming_it(
    start_refresher: Callable[..., Any], environment: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigurationError, match=named):
        start_refresher(**environment)


def test_the_base_url_comes_from_the_org_or_the_override() -> None:
    from kustomer_token.settings import RefreshSettings

    base = {"SIGNING_SECRET_ID": "s", "API_KEY_SECRET_ID": "a"}
    assert RefreshSettings.from_env({**base, "KUSTOMER_ORG": "acme"}).kustomer_api_base_url == (
        "https://acme.api.kustomerapp.com"
    )
    override = {**base, "KUSTOMER_ORG": "acme", "KUSTOMER_API_BASE_URL": "https://api.prod2.kustomerapp.com/"}
    assert RefreshSettings.from_env(override).kustomer_api_base_url == "https://api.prod2.kustomerapp.com"


def test_scheduled_runs_log_each_value_by_its_fingerprint_and_version(
    app: ModuleType,
    kustomer: FakeKustomer,
    new_signing_secret: Callable[[int], str],
    read_output: Callable[[], list[dict[str, Any]]],
) -> None:
    a, b = new_signing_secret(64), new_signing_secret(64)
    read_output()
    # When Kustomer holds A twice, then B
    runs = []
    for value in (a, a, b):
        kustomer.answer(secret_reply(value))
        runs.append(app.lambda_handler({}, FakeLambdaContext()))
    output = read_output()
    # Then each change names the new value, the one before it and the version; no change names what stays
    changed = [line for line in output if line.get("message") == "signing secret changed"]
    assert [(c["secret_fingerprint"], c.get("previous_fingerprint"), c["version_id"]) for c in changed] == [
        (secret_fingerprint(a), None, runs[0]["versionId"]),
        (secret_fingerprint(b), secret_fingerprint(a), runs[2]["versionId"]),
    ]
    (unchanged,) = [line for line in output if line.get("message") == "signing secret unchanged"]
    assert (unchanged["secret_fingerprint"], unchanged["version_id"]) == (secret_fingerprint(a), runs[0]["versionId"])
    assert metric_total(output, "SecretChanged") == 2
    assert metric_total(output, "SecretUnchanged") == 1


def test_a_failure_is_logged_with_its_reason_and_message_and_counted_once(
    app: ModuleType,
    kustomer: FakeKustomer,
    read_output: Callable[[], list[dict[str, Any]]],
) -> None:
    kustomer.answer(error_reply(403, "Forbidden"))
    read_output()
    with pytest.raises(KustomerError) as raised:
        app.lambda_handler({}, FakeLambdaContext())
    output = read_output()
    (line,) = [line for line in output if line.get("message") == "secret refresh failed"]
    assert (line["level"], line["reason"], line["error"]) == ("ERROR", "Forbidden", str(raised.value))
    assert metric_total(output, "RefreshFailed") == 1
    assert metric_total(output, "RefreshFailed", Reason="Forbidden", service="kustomer-chat-token") == 1


def test_an_unexpected_failure_is_logged_with_its_traceback_and_counted_by_its_type(
    app: ModuleType,
    read_output: Callable[[], list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:

    def broken(*args: object, **kwargs: object) -> str:
        raise LookupError("something nobody expected")

    monkeypatch.setattr(KustomerSettingsClient, "fetch_signing_secret", broken)
    read_output()
    with pytest.raises(LookupError):
        app.lambda_handler({}, FakeLambdaContext())
    output = read_output()
    (line,) = [line for line in output if line.get("message") == "secret refresh failed"]
    assert (line["level"], line["reason"]) == ("ERROR", "LookupError")
    assert "something nobody expected" in line["exception"]
    assert metric_total(output, "RefreshFailed", Reason="LookupError") == 1
