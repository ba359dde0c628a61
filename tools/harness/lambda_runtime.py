"""Runs one built function in the real Lambda runtime, without Docker.

The Runtime Interface Emulator that ships in the aws-sam-cli wheel runs
`python -m awslambdaric <handler>` from .venv-runtime (a Python 3.13 with only
what the Lambda runtime has: awslambdaric and boto3), with the built function
folder as the task root and the built layer's python/ where /opt/python would
be. Events are POSTed to /2015-03-31/functions/function/invocations.

With a RuntimeApiProxy the runtime reaches the emulator's Runtime API through
it, so a caller sees when INIT ends and how long each invocation runs (the
benchmark caps the runtime's CPU from that moment, as Lambda does).
"""

from __future__ import annotations

import json
import os
import platform
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from tools.harness.iam import function_role, role_credentials
from tools.harness.loopback import free_port
from tools.harness.runtime_api_proxy import RuntimeApiProxy
from tools.harness.template import function_settings, load_template

ROOT = Path(__file__).resolve().parents[2]
BUILD_DIR = ROOT / ".aws-sam" / "build"
RUNTIME_PYTHON = ROOT / ".venv-runtime" / "bin" / "python"
INVOKE_PATH = "/2015-03-31/functions/function/invocations"


def rie_binary() -> Path:
    """The emulator for this machine's architecture, from the SAM CLI environment."""
    arch = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine().lower()]
    matches = sorted((ROOT / ".venv-sam").glob(f"lib/python3*/site-packages/samcli/local/rapid/aws-lambda-rie-{arch}"))
    if not matches:
        raise FileNotFoundError("the Runtime Interface Emulator is missing: run `make install` (it comes with SAM CLI)")
    return matches[-1]


@dataclass(frozen=True)
class Invocation:
    """What the runtime answered: the handler's return value, or its error."""

    payload: Any
    error: dict[str, Any] | None
    seconds: float


class LambdaRuntime:
    def __init__(
        self,
        logical_id: str,
        *,
        handler: str,
        environment: dict[str, str],
        timeout_seconds: int = 10,
        memory_mb: int = 256,
        build_dir: Path = BUILD_DIR,
        task_root: Path | None = None,
        layer_python: Path | None = None,
        runtime_api_proxy: RuntimeApiProxy | None = None,
    ) -> None:
        self.logical_id = logical_id
        self.task_root = task_root or build_dir / logical_id
        self.layer_python = layer_python or build_dir / "SharedLayer" / "python"
        for needed in (self.task_root, self.layer_python):
            if not needed.is_dir():
                raise FileNotFoundError(f"{needed} is missing: run `make build` first")
        if not RUNTIME_PYTHON.exists():
            raise FileNotFoundError(f"{RUNTIME_PYTHON} is missing: run `make install`")
        self.handler = handler
        self.environment = environment
        self.timeout_seconds = timeout_seconds
        self.memory_mb = memory_mb
        self.runtime_api_proxy = runtime_api_proxy
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._log = tempfile.NamedTemporaryFile(prefix=f"{logical_id}-", suffix=".log", delete=False)  # noqa: SIM115
        self.started_at = 0.0

    @classmethod
    def from_template(
        cls,
        logical_id: str,
        *,
        resources: dict[str, str],
        parameters: dict[str, str],
        secrets_manager_url: str,
    ) -> LambdaRuntime:
        """A built function with the environment, handler, timeout and memory template.yaml gives it,
        pointed at a local Secrets Manager, and signing as the role the template gives it."""
        template = load_template()
        environment, properties = function_settings(
            logical_id, resources=resources, parameters=parameters, template=template
        )
        environment["AWS_ENDPOINT_URL_SECRETS_MANAGER"] = secrets_manager_url
        environment.update(role_credentials(function_role(template, logical_id)))
        return cls(
            logical_id,
            handler=properties["Handler"],
            environment=environment,
            timeout_seconds=int(properties.get("Timeout", 3)),
            memory_mb=int(properties.get("MemorySize", 128)),
        )

    def _process_environment(self) -> dict[str, str]:
        region = self.environment.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
        base = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "LAMBDA_TASK_ROOT": str(self.task_root),
            "LAMBDA_RUNTIME_DIR": str(RUNTIME_PYTHON.parent),
            "PYTHONPATH": f"{self.task_root}:{self.layer_python}",
            # Lambda's filesystem is read-only: Python cannot write bytecode caches there.
            "PYTHONDONTWRITEBYTECODE": "1",
            "_HANDLER": self.handler,
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
            "AWS_LAMBDA_FUNCTION_NAME": self.logical_id,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory_mb),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(self.timeout_seconds),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.logical_id}",
            "AWS_LAMBDA_LOG_STREAM_NAME": "local",
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
        }
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            if name in os.environ:
                base[name] = os.environ[name]
        return {**base, **self.environment}

    def start(self, timeout: float = 20.0) -> LambdaRuntime:
        self.port = free_port()
        runtime_api_port = free_port()
        bootstrap = [str(RUNTIME_PYTHON), "-m", "awslambdaric", self.handler]
        if self.runtime_api_proxy is not None:
            self.runtime_api_proxy.upstream_port = runtime_api_port
            self.runtime_api_proxy.start()
            # env execs the runtime, so the emulator's child is still the Python process itself.
            bootstrap = ["/usr/bin/env", f"AWS_LAMBDA_RUNTIME_API={self.runtime_api_proxy.address}", *bootstrap]
        command = [
            str(rie_binary()),
            "--runtime-interface-emulator-address",
            f"127.0.0.1:{self.port}",
            "--runtime-api-address",
            f"127.0.0.1:{runtime_api_port}",
            "--log-level",
            "error",
            *bootstrap,
        ]
        self.started_at = time.monotonic()
        self._process = subprocess.Popen(
            command,
            cwd=self.task_root,
            env=self._process_environment(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"the emulator for {self.logical_id} exited: {self.logs()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"the emulator for {self.logical_id} did not listen within {timeout} s")

    def invoke(self, event: Any, timeout: float | None = None) -> Invocation:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{INVOKE_PATH}",
            data=json.dumps(event).encode("utf-8"),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        started = time.monotonic()
        with urllib.request.urlopen(request, timeout=timeout or self.timeout_seconds + 10) as response:
            body = response.read()
        seconds = time.monotonic() - started
        payload = json.loads(body) if body else None
        if isinstance(payload, dict) and {"errorMessage", "errorType"} <= set(payload):
            return Invocation(payload=None, error=payload, seconds=seconds)
        return Invocation(payload=payload, error=None, seconds=seconds)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def runtime_pid(self) -> int | None:
        """The Python runtime process the emulator started (after the first invocation)."""
        if self._process is None:
            return None
        pids: list[int] = []
        # The emulator is multi-threaded: its child may be listed under any of its threads.
        for children in Path(f"/proc/{self._process.pid}/task").glob("*/children"):
            try:
                pids += [int(pid) for pid in children.read_text().split()]
            except OSError:
                continue
        return min(pids) if pids else None

    def runtime_memory_kib(self, field: str = "VmRSS") -> int:
        """A memory figure of the runtime process from /proc (VmRSS now, VmHWM at its peak), in KiB."""
        pid = self.runtime_pid()
        if pid is None:
            raise RuntimeError("the runtime process has not started: invoke the function first")
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise RuntimeError(f"{field} not found for process {pid}")

    def logs(self) -> str:
        self._log.flush()
        return Path(self._log.name).read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
            except ProcessLookupError:
                pass
        if self.runtime_api_proxy is not None:
            self.runtime_api_proxy.stop()

    def close(self) -> None:
        self.stop()
        self._log.close()
        Path(self._log.name).unlink(missing_ok=True)

    def __enter__(self) -> LambdaRuntime:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
