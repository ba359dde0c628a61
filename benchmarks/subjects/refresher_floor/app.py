"""Refresher cold-start reference: only what a scheduled refresh cannot avoid, each piece where Lambda runs it fastest.

During INIT (full CPU): boto3, a Secrets Manager client, urllib3's pool (botocore brings urllib3).
Per run (the memory's share of a CPU): one GetSecretValue (the API key), one HTTPS GET of Kustomer's
settings, one PutSecretValue of the secret found there. Its ClientRequestToken comes from the value (keyed with
the API key, as the refresher's own writes' do), so the same value is the same version: the put is idempotent, and the
refresher measured beside it still finds the secret unchanged and no pile of unlabelled versions.
"""

import hashlib
import hmac
import json
import os
import uuid

import boto3
import urllib3

client = boto3.client("secretsmanager")
pool = urllib3.PoolManager()
settings_url = os.environ["KUSTOMER_API_BASE_URL"].rstrip("/") + "/v1/auth/customer/settings"


def lambda_handler(event: object, context: object) -> dict[str, object]:
    key = client.get_secret_value(SecretId=os.environ["API_KEY_SECRET_ID"], VersionStage="AWSCURRENT")["SecretString"]
    answer = pool.request("GET", settings_url, headers={"Authorization": f"Bearer {key}"})
    document = json.loads(answer.data)
    secret = document.get("data", document)["attributes"]["secret"]
    written = client.put_secret_value(
        SecretId=os.environ["SIGNING_SECRET_ID"],
        SecretString=secret,
        ClientRequestToken=str(uuid.UUID(bytes=hmac.new(key.encode(), secret.encode(), hashlib.sha256).digest()[:16])),
    )
    return {"written": written["VersionId"]}
