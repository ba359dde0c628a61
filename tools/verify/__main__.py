"""python -m tools.verify --stack-name NAME [--region REGION] [--json] | --local [--json]

Exit status: 0 when no check failed, 1 when one did, 2 when the input names nothing to check
(no credentials, an unknown stack, a stack in another region or of another application).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Sequence
from types import FrameType
from typing import NoReturn

from tools.verify.checks import CHECKS, run_checks
from tools.verify.facts import StackRefused
from tools.verify.report import Result, exit_status, render_json, render_text

USAGE_ERROR = 2


class _Parser(argparse.ArgumentParser):
    as_json = False  # --json was among the arguments: a usage error is the JSON refusal too

    def error(self, message: str) -> NoReturn:
        raise SystemExit(_refused(f"{message} (python -m tools.verify --help)", self.as_json))


def _parser() -> _Parser:
    parser = _Parser(
        prog="python -m tools.verify", description="Checks a deployed kustomer-chat-token stack, read-only."
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--stack-name", help="name (or ARN) of the deployed stack")
    target.add_argument("--local", action="store_true", help="start the local stack of make serve and check it")
    parser.add_argument("--region", help="the stack's region (default: AWS_REGION, then your AWS configuration)")
    parser.add_argument("--json", action="store_true", help="one JSON document instead of lines")
    parser.add_argument("--check", action="append", choices=list(CHECKS), help="run only this check (repeatable)")
    return parser


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _report(stack: str, where: str, results: list[Result], as_json: bool) -> int:
    print(render_json(stack, where, results) if as_json else render_text(results), flush=True)
    return exit_status(results)


def _refused(reason: str, as_json: bool) -> int:
    """Input that names nothing to check: one line, never a traceback (as JSON on stdout with --json)."""
    line = " ".join(reason.split())
    if as_json:
        print(json.dumps({"ok": False, "error": line}), flush=True)
    else:
        print(f"verify: {line}", file=sys.stderr, flush=True)
    return USAGE_ERROR


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    parser.as_json = "--json" in (sys.argv[1:] if argv is None else argv)
    arguments = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    try:
        if arguments.local:
            if arguments.region:
                parser.error("--region is for a deployed stack, not --local")
            from tools.verify.local import local_verify_stack

            with local_verify_stack() as local:
                results = run_checks(local.facts, arguments.check)
                return _report(local.facts.stack.name, "local", results, arguments.json)
        from tools.verify.aws import aws_facts

        facts = aws_facts(arguments.stack_name, arguments.region)
        return _report(facts.stack.name, facts.where, run_checks(facts, arguments.check), arguments.json)
    except StackRefused as refused:
        return _refused(str(refused), arguments.json)
    except KeyboardInterrupt:
        print("verify: stopped", file=sys.stderr)
        return 130
    except Exception as error:  # one clear line, never a traceback
        # Locally the message is the developer's clue (run make build...); against AWS only the type is shown.
        said = f"{type(error).__name__}: {error}" if arguments.local else f"unexpected {type(error).__name__}"
        return _refused(said, arguments.json)


if __name__ == "__main__":
    sys.exit(main())
