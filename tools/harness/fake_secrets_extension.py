"""Stands in for the AWS Parameters and Secrets Lambda Extension on loopback.

Answers GET /secretsmanager/get?secretId=...&versionStage=... like the extension
(the GetSecretValue document), reading from the local Secrets Manager as the
function's role (the real extension signs with the function's credentials, so
the role check applies to it as well), and refuses requests without the
X-Aws-Parameters-Secrets-Token header the extension requires (the function's
AWS_SESSION_TOKEN).
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from tools.harness.iam import role_client
from tools.harness.loopback import Exchange, LoopbackServer


class FakeSecretsExtension(LoopbackServer):
    name = "fake-extension"

    def __init__(self, secrets_manager_url: str, session_token: str, role: str = "MintTokenFunctionRole") -> None:
        self._client = role_client(role, secrets_manager_url)
        self._token = session_token
        self.requests = 0
        super().__init__()

    def handle(self, exchange: Exchange) -> None:
        self.requests += 1
        url = urlsplit(exchange.target)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if exchange.header("X-Aws-Parameters-Secrets-Token") != self._token:
            exchange.reply_json(401, {"message": "missing or wrong X-Aws-Parameters-Secrets-Token"})
            return
        if exchange.method != "GET" or url.path != "/secretsmanager/get" or "secretId" not in query:
            exchange.reply_json(400, {"message": "bad request"})
            return
        try:
            answer = self._client.get_secret_value(
                SecretId=query["secretId"], VersionStage=query.get("versionStage", "AWSCURRENT")
            )
        except self._client.exceptions.ResourceNotFoundException:
            exchange.reply_json(400, {"message": "secret not found"})
            return
        answer.pop("ResponseMetadata", None)
        answer["CreatedDate"] = str(answer.get("CreatedDate"))
        exchange.reply_json(200, answer)
