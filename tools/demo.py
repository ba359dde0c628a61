"""make demo: the whole system on this machine, with no AWS account and no Docker.

A local Secrets Manager (moto) and a fake Kustomer holding a freshly generated
secret; the built refresher stores that secret, then the built mint signs a
visitor's token, both in the real Lambda runtime (the Runtime Interface
Emulator). Prints the token, proves it verifies with Kustomer's secret, shows
the browser code that uses it, and stops everything.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import jwt  # noqa: E402

from tools.local_stack import local_stack  # noqa: E402

STEPS = 6
EVENTS = ROOT / "events"
MINT_EVENT = "mint-token-external-id.json"


def step(number: int, text: str) -> None:
    print(f"==> [{number}/{STEPS}] {text}", flush=True)


def detail(text: str) -> None:
    print(f"      {text}", flush=True)


def _event(name: str) -> object:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


def _stop_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(f"stopped by signal {signum}")


def run() -> None:
    started = time.monotonic()
    step(1, "environments installed and functions built (make install build)")
    with local_stack() as stack:
        step(2, "local services up")
        detail(f"Secrets Manager (moto)  {stack.secrets_manager_url}  SigningSecret empty, ApiKeySecret set")
        detail(f"fake Kustomer           {stack.kustomer.url}  holds a generated signing secret")

        refreshed = stack.start_function("RefreshSecretFunction").invoke(_event("refresh-scheduled.json"))
        if refreshed.error:
            raise RuntimeError(f"the refresher failed: {refreshed.error.get('errorMessage')}")
        if stack.current_signing_secret() != stack.kustomer_secret:
            raise RuntimeError("the refresher ran but SigningSecret does not hold Kustomer's secret")
        step(3, "built refresher, in the Lambda runtime: Kustomer's secret landed in SigningSecret")
        detail(f"answer {json.dumps(refreshed.payload)}  ({len(stack.kustomer.settings_calls())} call to Kustomer)")

        minted = stack.start_function("MintTokenFunction").invoke(_event(MINT_EVENT))
        if minted.error:
            raise RuntimeError(f"the mint failed: {minted.error.get('errorMessage')}")
        answer = minted.payload
        body = json.loads(answer["body"])
        if answer["statusCode"] != 200:
            raise RuntimeError(f"the mint answered {answer['statusCode']}: {body}")
        step(4, f"built mint, in the Lambda runtime, with events/{MINT_EVENT}: {answer['statusCode']}")
        detail(f"headers {json.dumps(answer['headers'])}")

        token = body["jwtToken"]
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, stack.kustomer_secret, algorithms=["HS256"])
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
    elapsed = time.monotonic() - started
    step(6, f"stopped the runtimes, the fake Kustomer and the local Secrets Manager ({elapsed:.1f} s)")


def main() -> int:
    signal.signal(signal.SIGTERM, _stop_on_signal)
    try:
        run()
    except (Exception, SystemExit, KeyboardInterrupt) as exc:
        print(f"demo failed: {str(exc) or type(exc).__name__}", file=sys.stderr)
        print("everything it started has been stopped; `make test` shows more", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
