"""The refresher's Secrets Manager client: its time budget (inside the function's timeout) is set, not botocore's."""

from __future__ import annotations

from kustomer_token.secrets_store import default_client


def test_the_refreshers_client_gives_up_in_bounded_time() -> None:
    # botocore's defaults are 60 s connect and read timeouts with legacy retries.
    client = default_client()
    config = client.meta.config
    assert client.meta.service_model.service_name == "secretsmanager"
    assert (config.connect_timeout, config.read_timeout) == (2, 2)
    assert config.retries == {"mode": "standard", "total_max_attempts": 3}
