"""The StoreApiKeyCommand output, run in bash with a stand-in `aws` that records what it was given.

The key must reach the AWS CLI on standard input only: never on a command line
(any user can read /proc/PID/cmdline), never left in the operator's shell.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.leaks import LEAK_WATCH
from tools.harness.template import load_template

SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:ApiKeySecret-AbCdEf"

# A stand-in for the AWS CLI: writes its argv (one per line) and what it read from file:///dev/stdin.
FAKE_AWS = """#!/usr/bin/env bash
printf '%s\\n' "$@" > "$RECORD_DIR/argv"
for arg in "$@"; do
  if [ "$arg" = "file:///dev/stdin" ]; then cat > "$RECORD_DIR/stdin"; fi
done
exit "${FAKE_AWS_EXIT:-0}"
"""


def _command() -> str:
    value = load_template()["Outputs"]["StoreApiKeyCommand"]["Value"]["Fn::Sub"]
    return str(value).replace("${AWS::Region}", "us-east-1").replace("${ApiKeySecret}", SECRET_ARN)


def _run(tmp_path: Path, key: str, exit_code: int) -> tuple[subprocess.CompletedProcess[str], Path]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "aws").write_text(FAKE_AWS)
    (bin_dir / "aws").chmod(0o755)
    record = tmp_path / "record"
    record.mkdir()
    bash = shutil.which("bash")
    assert bash is not None
    # The operator's shell: the command, then a look at what it left behind.
    script = f'{_command()}\nstatus=$?\ndeclare -p KEY KUSTOMER_API_KEY > "$RECORD_DIR/left" 2>&1\nexit $status\n'
    environment = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "RECORD_DIR": str(record),
        "FAKE_AWS_EXIT": str(exit_code),
    }
    completed = subprocess.run(
        [bash, "-c", script], input=key + "\n", capture_output=True, text=True, env=environment, timeout=30, check=False
    )
    return completed, record


@pytest.mark.parametrize("exit_code", [0, 254], ids=["stored", "aws-cli-failed"])
def test_the_key_reaches_the_cli_on_stdin_only_and_is_not_left_in_the_shell(tmp_path: Path, exit_code: int) -> None:
    # Given an operator who pastes a key (with characters a shell would mangle) at the prompt
    key = LEAK_WATCH.register("kapi-" + secrets.token_hex(16) + " $HOME 'q' \\n", "API key")
    # When the stack's StoreApiKeyCommand runs (and the AWS CLI succeeds, or fails)
    completed, record = _run(tmp_path, key, exit_code)
    # Then the CLI got the exact key on standard input, the put-secret-value call names the secret,
    argv = (record / "argv").read_text().splitlines()
    assert (record / "stdin").read_text() == key
    assert argv[:2] == ["secretsmanager", "put-secret-value"]
    assert argv[argv.index("--secret-id") + 1] == SECRET_ARN
    assert argv[argv.index("--secret-string") + 1] == "file:///dev/stdin"
    # no argument holds the key, nothing was echoed, and the shell keeps no variable with it
    assert not [arg for arg in argv if key in arg]
    assert key not in completed.stdout + completed.stderr
    assert "KEY=" not in (record / "left").read_text()
    assert completed.returncode == exit_code
