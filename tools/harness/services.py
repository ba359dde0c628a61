"""Local stand-ins for AWS, started and stopped by the tests: moto's Secrets Manager server."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

from tools.harness.loopback import free_port

ROOT = Path(__file__).resolve().parents[2]
# moto's server with the corrections of secrets_manager_behaviour applied first.
_SERVE = "import tools.harness.secrets_manager_behaviour as aws; aws.apply(); import moto.server; moto.server.main()"


class MotoServer:
    """moto in server mode on a free loopback port, as a child process, behaving as AWS where moto does not."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> MotoServer:
        self._process = subprocess.Popen(
            [sys.executable, "-c", _SERVE, "-H", "127.0.0.1", "-p", str(self.port)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"moto server exited with code {self._process.returncode}")
            try:
                with urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1):
                    return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto server did not answer on {self.url} within {timeout} s")

    def reset(self) -> None:
        """Forget every secret, so each test starts from an empty Secrets Manager."""
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=5):
            pass

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
        self._process = None

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def current_secret_string(client: Any, secret_id: str) -> str | None:
    """What AWSCURRENT of a secret holds, or None when the secret has no value yet (or does not exist)."""
    try:
        answer = client.get_secret_value(SecretId=secret_id, VersionStage="AWSCURRENT")
    except client.exceptions.ResourceNotFoundException:
        return None
    value: str | None = answer.get("SecretString")
    return value
