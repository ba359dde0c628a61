"""The refresher's Secrets Manager client: its time budget (inside the function's timeout) is set, not botocore's."""

from __future__ import annotations

import pytest

from kustomer_token.secrets_store import SecretStore, default_client


def test_the_refreshers_client_gives_up_in_bounded_time() -> None:
    # botocore's defaults are 60 s connect and read timeouts with legacy retries.
    client = default_client()
    config = client.meta.config
    assert client.meta.service_model.service_name == "secretsmanager"
    assert (config.connect_timeout, config.read_timeout) == (2, 2)
    assert config.retries == {"mode": "standard", "total_max_attempts": 3}


def test_a_failure_that_is_not_an_aws_answer_reaches_the_caller_as_it_is() -> None:
    # An error without an AWS answer (Secrets Manager unreachable) is not "no value": it is raised unchanged
    class Unreachable:
        def get_secret_value(self, **request: object) -> dict[str, object]:
            raise ConnectionError("no route to Secrets Manager")

    with pytest.raises(ConnectionError, match="no route"):
        SecretStore(Unreachable()).read("signing-secret")
