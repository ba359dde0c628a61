"""make demo: the whole system on this machine, with no AWS account and no Docker.

A local Secrets Manager (moto) and a fake Kustomer holding a freshly generated
secret; the built refresher stores that secret, then the built mint signs a
visitor's token, both in the real Lambda runtime (the Runtime Interface
Emulator). Prints the token, proves it verifies with Kustomer's secret, shows
the browser code that uses it, and stops everything.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import sys
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402
import jwt  # noqa: E402

from tests.support.fake_kustomer import FakeKustomer, secret_reply  # noqa: E402
from tests.support.lambda_runtime import LambdaRuntime  # noqa: E402
from tests.support.services import MotoServer  # noqa: E402
from tests.support.template import function_settings  # noqa: E402

STEPS = 6
MINT_EVENT = ROOT / "events" / "mint-token-external-id.json"


def step(number: int, text: str) -> None:
    print(f"==> [{number}/{STEPS}] {text}", flush=True)


def detail(text: str) -> None:
    print(f"      {text}", flush=True)


def _stop_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(f"stopped by signal {signum}")


def run() -> None:
    started = time.monotonic()
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    os.environ.pop("AWS_PROFILE", None)
    os.environ.pop("AWS_SESSION_TOKEN", None)
    step(1, "environments installed and functions built (make install build)")

    with ExitStack() as running:
        moto = running.enter_context(MotoServer())
        api_key = "demo-" + secrets.token_hex(20)
        kustomer_secret = secrets.token_hex(32)
        kustomer = FakeKustomer(api_key).start()
        running.callback(kustomer.stop)
        kustomer.answer(secret_reply(kustomer_secret))
        client = boto3.client("secretsmanager", endpoint_url=moto.url)
        signing_arn = client.create_secret(Name="kustomer-chat-token/SigningSecret")["ARN"]
        api_key_arn = client.create_secret(Name="kustomer-chat-token/ApiKeySecret", SecretString=api_key)["ARN"]
        step(2, "local services up")
        detail(f"Secrets Manager (moto)  {moto.url}  SigningSecret empty, ApiKeySecret holds an API key")
        detail(f"fake Kustomer           {kustomer.url}  holds a generated signing secret")

        def start(logical_id: str) -> LambdaRuntime:
            environment, properties = function_settings(
                logical_id,
                resources={"SigningSecret": signing_arn, "ApiKeySecret": api_key_arn},
                parameters={"KustomerOrg": "demo", "KustomerApiBaseUrl": kustomer.url},
            )
            environment["AWS_ENDPOINT_URL_SECRETS_MANAGER"] = moto.url
            runtime = LambdaRuntime(
                logical_id,
                handler=properties["Handler"],
                environment=environment,
                timeout_seconds=int(properties["Timeout"]),
                memory_mb=int(properties["MemorySize"]),
            )
            running.callback(runtime.close)
            return runtime.start()

        refresher = start("RefreshSecretFunction")
        refreshed = refresher.invoke(json.loads((ROOT / "events" / "refresh-scheduled.json").read_text()))
        if refreshed.error:
            raise RuntimeError(f"the refresher failed: {refreshed.error.get('errorMessage')}")
        stored = client.get_secret_value(SecretId=signing_arn, VersionStage="AWSCURRENT")["SecretString"]
        if stored != kustomer_secret:
            raise RuntimeError("the refresher ran but SigningSecret does not hold Kustomer's secret")
        step(3, "built refresher, in the Lambda runtime: Kustomer's secret landed in SigningSecret")
        detail(f"answer {json.dumps(refreshed.payload)}  ({len(kustomer.settings_calls())} call to Kustomer)")

        mint = start("MintTokenFunction")
        minted = mint.invoke(json.loads(MINT_EVENT.read_text()))
        if minted.error:
            raise RuntimeError(f"the mint failed: {minted.error.get('errorMessage')}")
        answer = minted.payload
        body = json.loads(answer["body"])
        if answer["statusCode"] != 200:
            raise RuntimeError(f"the mint answered {answer['statusCode']}: {body}")
        step(4, f"built mint, in the Lambda runtime, with events/{MINT_EVENT.name}: {answer['statusCode']}")
        detail(f"headers {json.dumps(answer['headers'])}")

        token = body["jwtToken"]
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, kustomer_secret, algorithms=["HS256"])
        issued = datetime.fromtimestamp(body["issuedAt"], UTC).strftime("%H:%M:%S UTC")
        expires = datetime.fromtimestamp(body["expiresAt"], UTC).strftime("%H:%M:%S UTC")
        step(5, "the token Kustomer's chat SDK takes")
        detail(f"jwtToken   {token}")
        detail(f"header     {json.dumps(header, separators=(',', ':'))}")
        detail(f"payload    {json.dumps(claims, separators=(',', ':'), ensure_ascii=False)}")
        detail(f"verified   HS256 with Kustomer's secret: yes; issued {issued}, Kustomer accepts it until {expires}")
        identifier = {key: body[key] for key in ("externalId", "email") if key in body}
        detail("in the browser:")
        detail(f"  Kustomer.isLoggedIn({json.dumps(identifier)}, (loggedIn) => {{")
        detail("    if (!loggedIn) Kustomer.login({ jwtToken });  // jwtToken from POST /token")
        detail("  });")
    step(6, f"stopped the runtimes, the fake Kustomer and the local Secrets Manager ({time.monotonic() - started:.1f} s)")


def main() -> int:
    signal.signal(signal.SIGTERM, _stop_on_signal)
    try:
        run()
    except (Exception, SystemExit, KeyboardInterrupt) as exc:
        message = str(exc) or type(exc).__name__
        print(f"demo failed: {message}", file=sys.stderr)
        print("everything it started has been stopped; `make test` shows more", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
