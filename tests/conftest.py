"""Shared fixtures: a local Secrets Manager (moto server behind the IAM role check), fresh function
containers under their own roles, and the leak check."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import secrets
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
import urllib3.util.retry
from hypothesis import settings as hypothesis_settings

from tests.support.clocks import RetryWaits
from tests.support.functions import MintContainer, load_function
from tests.support.leaks import LEAK_WATCH
from tools.harness.fake_kustomer import FakeKustomer
from tools.harness.iam import ADMIN_ENVIRONMENT, RoleCheck, role_credentials
from tools.harness.services import MotoServer
from tools.harness.sm_proxy import SecretsManagerProxy

TESTS = Path(__file__).resolve().parent
# tests/e2e runs against a deployed stack with `make e2e` only (pytest --confcutdir=tests/e2e, which leaves this file
# out): the local suite does not collect it at all, so no skipped end-to-end test hides in `make test`.
collect_ignore = ["e2e"]

# A folder says what its tests need, and its marker names it (pyproject.toml registers them; the Makefile's test-*
# targets and the CI jobs select by them). tests/unit and tests/project need only .venv and have none.
FOLDER_MARKERS = {
    ("integration",): ("services",),
    ("integration", "faults"): ("services", "reliability"),
    ("integration", "concurrency"): ("services", "reliability"),
    ("integration", "fuzz"): ("services", "reliability"),
    ("sam",): ("sam",),
    ("runtime",): ("runtime",),
    ("browser",): ("browser",),
}


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(item.path).resolve()
        if not path.is_relative_to(TESTS):
            continue
        folders = path.relative_to(TESTS).parts[:-1]
        for depth in range(len(folders), 0, -1):
            if folders[:depth] in FOLDER_MARKERS:
                for name in FOLDER_MARKERS[folders[:depth]]:
                    item.add_marker(name)
                break


# `make test` fuzzes briefly; `make fuzz` sets HYPOTHESIS_PROFILE=fuzz for at least 10,000 examples per target.
hypothesis_settings.register_profile("fast", max_examples=150, deadline=None, derandomize=False)
hypothesis_settings.register_profile("fuzz", max_examples=10_000, deadline=None)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fast"))

# No real AWS account is ever touched: fake credentials, no profile files. The test process
# itself is the account's admin; each function gets its own role's credentials.
_AWS_TEST_ENV = {
    **ADMIN_ENVIRONMENT,
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
    "POWERTOOLS_SERVICE_NAME": "kustomer-chat-token",
    "POWERTOOLS_METRICS_NAMESPACE": "KustomerChatToken",
    "POWERTOOLS_LOG_LEVEL": "INFO",
}


@pytest.fixture(scope="session", autouse=True)
def _aws_test_environment() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in _AWS_TEST_ENV.items():
            patch.setenv(name, value)
        patch.delenv("AWS_PROFILE", raising=False)
        yield


@dataclass
class LocalSecretsManager:
    moto: MotoServer
    proxy: SecretsManagerProxy


@pytest.fixture(scope="session")
def _local_secrets_manager(_aws_test_environment: None) -> Iterator[LocalSecretsManager]:
    """moto, and in front of it the role check every function's call goes through (the endpoint in the environment)."""
    with MotoServer() as server, pytest.MonkeyPatch.context() as patch:
        proxy = SecretsManagerProxy(server.url, RoleCheck()).start()
        patch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", proxy.url)
        yield LocalSecretsManager(server, proxy)
        proxy.stop()


@pytest.fixture(scope="session")
def moto_server(_local_secrets_manager: LocalSecretsManager) -> MotoServer:
    """moto itself, without the role check: what the account's admin (test setup) talks to."""
    return _local_secrets_manager.moto


@pytest.fixture
def secretsmanager(_local_secrets_manager: LocalSecretsManager) -> Any:
    """An admin client of the local Secrets Manager, emptied before each test, with a fresh role check."""
    _local_secrets_manager.moto.reset()
    proxy = _local_secrets_manager.proxy
    proxy.heal()
    proxy.reset()
    proxy.role_check = RoleCheck()
    return boto3.client("secretsmanager", endpoint_url=_local_secrets_manager.moto.url)


@pytest.fixture
def sm_proxy(_local_secrets_manager: LocalSecretsManager, secretsmanager: Any) -> Iterator[SecretsManagerProxy]:
    """The proxy the functions reach Secrets Manager through: role check, call log, faults (healed after)."""
    yield _local_secrets_manager.proxy
    _local_secrets_manager.proxy.heal()


_secret_names = itertools.count(1)


@pytest.fixture
def new_signing_secret() -> Callable[[int], str]:
    """Makes a random signing secret of the given byte length and puts it on the leak watch list."""

    def make(length: int = 48) -> str:
        return LEAK_WATCH.register(secrets.token_hex(length // 2), "signing secret")

    return make


@pytest.fixture
def stored_secret(secretsmanager: Any, new_signing_secret: Callable[[int], str]) -> tuple[str, str]:
    """(ARN, value) of a signing secret stored in the local Secrets Manager."""
    value = new_signing_secret(48)
    created = secretsmanager.create_secret(Name=f"signing-secret-{next(_secret_names)}", SecretString=value)
    return created["ARN"], value


@pytest.fixture
def api_key() -> str:
    """A Kustomer API key for the fake Kustomer, on the leak watch list."""
    return LEAK_WATCH.register("kapi-" + secrets.token_hex(24), "API key")


@pytest.fixture
def kustomer(api_key: str) -> Iterator[FakeKustomer]:
    """A fake Kustomer settings endpoint on loopback that accepts `api_key`."""
    fake = FakeKustomer(api_key).start()
    yield fake
    fake.stop()


@pytest.fixture
def retry_waits(monkeypatch: pytest.MonkeyPatch) -> RetryWaits:
    """The Kustomer client's retry waits (Retry-After, back-off), recorded instead of slept."""
    waits = RetryWaits()
    # The client sleeps the wait it checked against the deadline; urllib3's own sleep is watched too, so a
    # second sleep would show.
    monkeypatch.setattr("kustomer_token.kustomer.time", waits)
    monkeypatch.setattr(urllib3.util.retry, "time", waits)
    return waits


_containers = itertools.count(1)


def _run_as(monkeypatch: pytest.MonkeyPatch, role: str) -> None:
    """The function's process environment holds its role's credentials, as Lambda gives them."""
    for name, value in role_credentials(role).items():
        monkeypatch.setenv(name, value)
    # A new container starts with no boto3 default session: the one before cached other credentials.
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)


@pytest.fixture
def start_mint(monkeypatch: pytest.MonkeyPatch, sm_proxy: SecretsManagerProxy) -> Callable[..., MintContainer]:
    """Cold-starts a mint container under MintTokenFunctionRole: sets its environment, then imports
    functions/mint/app.py afresh. The secret it names stands for SigningSecret in the role check."""

    def start(**environment: str) -> MintContainer:
        for name in (
            "SECRET_CACHE_TTL_SECONDS",
            "SECRET_MAX_STALE_SECONDS",
            "TOKEN_IDENTITY",
            "REQUIRE_EMAIL_VERIFIED",
        ):
            monkeypatch.delenv(name, raising=False)
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        _run_as(monkeypatch, "MintTokenFunctionRole")
        if sm_proxy.role_check is not None and environment.get("SIGNING_SECRET_ID"):
            sm_proxy.role_check.bind_default(SigningSecret=environment["SIGNING_SECRET_ID"])
        return MintContainer(load_function("mint", f"mint_app_container_{next(_containers)}"))

    return start


@pytest.fixture
def start_refresher(monkeypatch: pytest.MonkeyPatch, sm_proxy: SecretsManagerProxy) -> Callable[..., ModuleType]:
    """Cold-starts the refresh function under RefreshSecretFunctionRole: its environment, then
    functions/refresh/app.py imported afresh. The secrets it names stand for the stack's two."""

    def start(**environment: str) -> ModuleType:
        for name in ("KUSTOMER_ORG", "KUSTOMER_API_BASE_URL", "API_KEY_SECRET_ID", "SIGNING_SECRET_ID"):
            monkeypatch.delenv(name, raising=False)
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        _run_as(monkeypatch, "RefreshSecretFunctionRole")
        if sm_proxy.role_check is not None:
            bound = {"SIGNING_SECRET_ID": "SigningSecret", "API_KEY_SECRET_ID": "ApiKeySecret"}
            sm_proxy.role_check.bind_default(
                **{logical: environment[name] for name, logical in bound.items() if environment.get(name)}
            )
        return load_function("refresh", f"refresh_app_container_{next(_containers)}")

    return start


@pytest.fixture(autouse=True)
def _clear_powertools_state() -> Iterator[None]:
    from kustomer_token.observability import metrics

    metrics.clear_metrics()
    yield
    metrics.clear_metrics()


@pytest.fixture
def read_output(capfd: pytest.CaptureFixture[str]) -> Callable[[], list[dict[str, Any]]]:
    """Reads what the code wrote so far as JSON lines (logs and EMF metrics)."""

    def read() -> list[dict[str, Any]]:
        out, err = capfd.readouterr()
        LEAK_WATCH.read_by_test(out + err)
        lines = []
        for line in (out + err).splitlines():
            line = line.strip()
            if line.startswith("{"):
                lines.append(json.loads(line))
        return lines

    return read


class _CurrentStdout:
    """A stream that writes to whatever sys.stdout is now: the capture of the running test."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


def _log_to_current_stdout() -> None:
    # The Lambda runtime sends stdout to CloudWatch. The Powertools handler keeps the
    # stdout of import time; point it at the running test's capture so every line is checked.
    import logging

    from kustomer_token.observability import logger

    for handler in logging.getLogger(logger.name).handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler.stream, _CurrentStdout):
            # Not setStream: it flushes the old stream, which a test session run in-process before
            # this one (mutmut's) may have closed.
            with handler.lock or contextlib.nullcontext():
                handler.stream = _CurrentStdout()


@pytest.fixture(autouse=True)
def _no_secret_or_token_in_output(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> Iterator[None]:
    """Fails any test whose output holds a registered signing secret or a minted token."""
    _log_to_current_stdout()
    yield
    out, err = capfd.readouterr()
    text = out + err + caplog.text + LEAK_WATCH.take_read_by_tests()
    sys.stdout.write(out)
    sys.stderr.write(err)
    found = LEAK_WATCH.findings(text)
    if found:
        pytest.fail(f"output of this test holds a {' and a '.join(found)}", pytrace=False)
