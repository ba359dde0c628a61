"""The role check on the wire: callers known by their SigV4 access key, secrets by name or ARN, AWS's answers."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tools.harness.iam import role_client
from tools.harness.sm_proxy import SecretsManagerProxy


@pytest.fixture
def secrets(secretsmanager: Any, sm_proxy: SecretsManagerProxy) -> dict[str, str]:
    signing = secretsmanager.create_secret(Name="kct/SigningSecret", SecretString="signing-value")["ARN"]
    other = secretsmanager.create_secret(Name="kct/Other", SecretString="other-value")["ARN"]
    assert sm_proxy.role_check is not None
    sm_proxy.role_check.bind(SigningSecret="kct/SigningSecret")
    return {"signing": signing, "other": other}


def test_the_secret_may_be_named_by_name_full_or_partial_arn(
    secrets: dict[str, str], sm_proxy: SecretsManagerProxy
) -> None:
    mint = role_client("MintTokenFunctionRole", sm_proxy.url)
    partial = secrets["signing"].rsplit("-", 1)[0]
    for secret_id in ("kct/SigningSecret", secrets["signing"], partial):
        assert mint.get_secret_value(SecretId=secret_id)["SecretString"] == "signing-value"
    assert {call.resource for call in sm_proxy.role_calls(allowed=True)} == {secrets["signing"]}


def test_what_the_role_does_not_grant_is_refused_as_aws_refuses_it(
    secrets: dict[str, str], sm_proxy: SecretsManagerProxy
) -> None:
    mint = role_client("MintTokenFunctionRole", sm_proxy.url)
    with pytest.raises(ClientError) as refused:
        mint.describe_secret(SecretId="kct/Other")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert refused.value.response["Error"] == {
        "Code": "AccessDeniedException",
        "Message": "User: arn:aws:sts::123456789012:assumed-role/MintTokenFunctionRole/MintTokenFunction is not "
        f"authorized to perform: secretsmanager:DescribeSecret on resource: {secrets['other']} because no "
        "identity-based policy allows the secretsmanager:DescribeSecret action",
    }
    assert [(c.role, c.action, c.allowed) for c in sm_proxy.role_calls()] == [
        ("MintTokenFunctionRole", "secretsmanager:DescribeSecret", False)
    ]


def test_an_unknown_key_is_refused_and_the_admin_may_do_anything(
    secrets: dict[str, str], sm_proxy: SecretsManagerProxy
) -> None:
    stranger = boto3.client(
        "secretsmanager", endpoint_url=sm_proxy.url, aws_access_key_id="AKIASTRANGER", aws_secret_access_key="x"
    )
    with pytest.raises(ClientError) as refused:
        stranger.get_secret_value(SecretId=secrets["signing"])
    assert refused.value.response["Error"]["Code"] == "UnrecognizedClientException"
    admin = boto3.client("secretsmanager", endpoint_url=sm_proxy.url)
    admin.put_secret_value(SecretId=secrets["other"], SecretString="changed-by-admin")
    assert admin.get_secret_value(SecretId=secrets["other"])["SecretString"] == "changed-by-admin"
    assert sm_proxy.role_calls() == []
