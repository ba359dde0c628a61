"""make serve: the token API on loopback, as API Gateway would run it, with no AWS account and no Docker.

Starts a local Secrets Manager and a fake Kustomer, runs the built refresher so the
signing secret lands, then serves the built mint (in the Lambda runtime) behind a
local gateway whose routes, JWT authorizer and CORS are those of the template after the
SAM transform, and examples/web/ as a second origin.
Prints the URLs, a development access token and a curl line; Ctrl-C stops everything.
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools.local_api import DEV_MARKER, LOCAL_DEV_CALLER_ARN, LOCAL_DEV_CALLER_ROLE_ARN, serve_stack  # noqa: E402
from tools.local_stack import local_stack  # noqa: E402


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main() -> int:
    signal.signal(signal.SIGTERM, _stop)
    try:
        with local_stack() as stack:
            refreshed = stack.start_function("RefreshSecretFunction").invoke(
                json.loads((ROOT / "events" / "refresh-scheduled.json").read_text())
            )
            if refreshed.error:
                print(f"the refresher failed: {refreshed.error.get('errorMessage')}", file=sys.stderr)
                return 1
            with serve_stack(stack, site_root=ROOT / "examples" / "web") as served:
                api = served.api
                print("LOCAL DEVELOPMENT SERVER - not for production", flush=True)
                print(f"  token API     {api.url}   (POST /token, POST /server/token)")
                print(f"  example page  {served.site.url}/")
                print(f"  dev issuer    {served.issuer.url}   (audience local-dev-client)")
                print("  access token  (a dev visitor, valid 1 hour):")
                print(f"    {served.access_token}")
                print("  try it:")
                print(f"    curl -sS -X POST {api.url}/token -H 'Authorization: Bearer {served.access_token}'")
                print("  /server/token stands in for SigV4 with a key of this run only; the mint sees the IAM caller")
                print(f"    {LOCAL_DEV_CALLER_ARN} (ServerTokenCallers={LOCAL_DEV_CALLER_ROLE_ARN}):")
                print(
                    f"    curl -sS -X POST {api.url}/server/token -H 'Authorization: LocalDevIam {api.iam_key}'"
                    " -H 'content-type: application/json' -d '{\"externalId\": \"crm-42\"}'"
                )
                print(f"  every answer carries {DEV_MARKER[0]}: {DEV_MARKER[1]}; Ctrl-C stops everything.", flush=True)
                signal.pause()
    except KeyboardInterrupt:
        print("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
