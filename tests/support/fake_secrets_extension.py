"""Stands in for the AWS Parameters and Secrets Lambda Extension on loopback.

Answers GET /secretsmanager/get?secretId=...&versionStage=... like the extension
(the GetSecretValue document), reading from the local Secrets Manager as the
function's role (the real extension signs with the function's credentials, so
the role check applies to it as well), and refuses requests without the
X-Aws-Parameters-Secrets-Token header the extension requires (the function's
AWS_SESSION_TOKEN).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.iam import role_client


class FakeSecretsExtension:
    def __init__(self, secrets_manager_url: str, session_token: str, role: str = "MintTokenFunctionRole") -> None:
        self._client = role_client(role, secrets_manager_url)
        self._token = session_token
        self.requests = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-extension", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> FakeSecretsExtension:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                fake.requests += 1
                url = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if self.headers.get("X-Aws-Parameters-Secrets-Token") != fake._token:
                    self._send(401, {"message": "missing or wrong X-Aws-Parameters-Secrets-Token"})
                    return
                if url.path != "/secretsmanager/get" or "secretId" not in query:
                    self._send(400, {"message": "bad request"})
                    return
                try:
                    answer = fake._client.get_secret_value(
                        SecretId=query["secretId"], VersionStage=query.get("versionStage", "AWSCURRENT")
                    )
                except fake._client.exceptions.ResourceNotFoundException:
                    self._send(400, {"message": "secret not found"})
                    return
                answer.pop("ResponseMetadata", None)
                answer["CreatedDate"] = str(answer.get("CreatedDate"))
                self._send(200, answer)

            def _send(self, status: int, document: dict[str, Any]) -> None:
                body = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
