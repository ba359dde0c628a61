"""A local HTTP API in front of the built mint, behaving like the deployed API Gateway HTTP API.

- Routes from template.yaml; unknown routes get API Gateway's own 404.
- CORS from the template's CorsConfiguration, preflight answered by the "gateway".
- `POST /token` is protected by a JWT authorizer like API Gateway's: the Bearer token
  must verify against a local development OIDC issuer (a key pair made at start, its
  JWKS served on loopback), with `iss`, `aud`, `exp` and `nbf` checked, else 401
  before the function runs. Claims reach the function as strings, as API Gateway
  passes them.
- `POST /server/token` needs SigV4 in AWS. Here it needs
  `Authorization: LocalDevIam <key printed at start>` instead, and the function sees
  an IAM context whose principal is `LOCAL-DEV-ONLY`. Every answer of this server
  carries `X-Local-Dev-Server: not-for-production`.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.lambda_runtime import LambdaRuntime
from tests.support.services import free_port
from tests.support.template import load_template

DEV_AUDIENCE = "local-dev-client"
_Answer = tuple[int, dict[str, str], bytes]
DEV_MARKER = ("X-Local-Dev-Server", "not-for-production")


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True


def _serve(handler: type[BaseHTTPRequestHandler], port: int = 0) -> tuple[ThreadingHTTPServer, str]:
    server = _QuietServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, name=handler.__name__, daemon=True).start()
    host, bound = server.server_address[:2]
    return server, f"http://{host!s}:{bound}"


class DevIssuer:
    """A development OIDC issuer: one RSA key, its JWKS on loopback, and tokens signed with it."""

    def __init__(self) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = uuid.uuid4().hex[:16]
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key()))
        jwks = json.dumps({"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}]}).encode()
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/.well-known/jwks.json":
                    body = jwks
                elif self.path == "/.well-known/openid-configuration":
                    document = {"issuer": issuer.url, "jwks_uri": f"{issuer.url}/.well-known/jwks.json"}
                    body = json.dumps(document).encode()
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server, self.url = _serve(Handler)
        self.jwks_url = f"{self.url}/.well-known/jwks.json"

    def access_token(self, claims: dict[str, Any], *, lifetime: int = 3600, audience: str = DEV_AUDIENCE) -> str:
        now = int(time.time())
        payload = {"iss": self.url, "aud": audience, "iat": now, "nbf": now, "exp": now + lifetime, **claims}
        return jwt.encode(payload, self._key, algorithm="RS256", headers={"kid": self.kid})

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _gateway_claim(value: Any) -> str:
    """API Gateway HTTP API hands JWT claims to the function as strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + " ".join(str(item) for item in value) + "]"
    if isinstance(value, (dict,)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


@dataclass(frozen=True)
class Cors:
    origins: tuple[str, ...]
    methods: tuple[str, ...]
    headers: tuple[str, ...]
    expose: tuple[str, ...]
    max_age: int

    @classmethod
    def from_template(cls, origins: list[str]) -> Cors:
        config = load_template()["Resources"]["TokenApi"]["Properties"]["CorsConfiguration"]
        return cls(
            tuple(origins),
            tuple(config["AllowMethods"]),
            tuple(h.lower() for h in config["AllowHeaders"]),
            tuple(h.lower() for h in config.get("ExposeHeaders", [])),
            int(config["MaxAge"]),
        )


class LocalApi:
    """The gateway: authorizers, CORS, routing, and the built mint in the Lambda runtime behind them."""

    def __init__(self, mint: LambdaRuntime, issuer: DevIssuer, cors: Cors) -> None:
        self.mint = mint
        self.issuer = issuer
        self.cors = cors
        self.iam_key = "dev-" + secrets.token_hex(16)
        self._jwks = jwt.PyJWKClient(issuer.jwks_url, cache_keys=True)
        self._invoke_lock = threading.Lock()  # one container: one invocation at a time
        self.statuses: list[int] = []  # every status answered, in order
        self.routes = self._routes_from_template()
        self._server, self.url = _serve(self._handler_class())

    @staticmethod
    def _routes_from_template() -> dict[tuple[str, str], str]:
        routes = {}
        properties = load_template()["Resources"]["MintTokenFunction"]["Properties"]
        for event in properties["Events"].values():
            if event["Type"] == "HttpApi":
                spec = event["Properties"]
                routes[(spec["Method"].upper(), spec["Path"])] = spec.get("Auth", {}).get("Authorizer", "JWT")
        return routes

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- authorizers -----------------------------------------------------------------------------

    def _jwt_claims(self, authorization: str | None) -> dict[str, str] | None:
        if not authorization or not authorization.startswith("Bearer "):
            return None
        token = authorization[len("Bearer ") :].strip()
        try:
            key = self._jwks.get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                audience=DEV_AUDIENCE,
                issuer=self.issuer.url,
                options={"require": ["exp", "iss", "aud"], "verify_nbf": True},
            )
        except jwt.PyJWTError:
            return None
        return {name: _gateway_claim(value) for name, value in claims.items()}

    def _iam_context(self, authorization: str | None) -> dict[str, Any] | None:
        if authorization != f"LocalDevIam {self.iam_key}":
            return None
        return {
            "accessKey": "LOCAL-DEV-ONLY",
            "accountId": "000000000000",
            "callerId": "LOCAL-DEV-ONLY",
            "principalOrgId": None,
            "userArn": "arn:aws:iam::000000000000:user/LOCAL-DEV-ONLY",
            "userId": "LOCAL-DEV-ONLY",
        }

    # --- the gateway -------------------------------------------------------------------------------

    def _event(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
        request_id = uuid.uuid4().hex
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": f"{method} {path}",
            "rawPath": path,
            "rawQueryString": query,
            "headers": headers,
            "requestContext": {
                "accountId": "000000000000",
                "apiId": "localapi",
                "domainName": "127.0.0.1",
                "domainPrefix": "localapi",
                "http": {
                    "method": method,
                    "path": path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": "127.0.0.1",
                    "userAgent": headers.get("user-agent", ""),
                },
                "requestId": request_id,
                "routeKey": f"{method} {path}",
                "stage": "$default",
                "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
                "timeEpoch": int(time.time() * 1000),
            },
            "isBase64Encoded": False,
        }
        if body:
            try:
                event["body"] = body.decode("utf-8")
            except UnicodeDecodeError:
                event["body"] = base64.b64encode(body).decode("ascii")
                event["isBase64Encoded"] = True
        return event

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> _Answer:
        status, answer_headers, answer = self._handle(method, target, headers, body)
        self.statuses.append(status)
        return status, answer_headers, answer

    def _handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> _Answer:
        url = urlsplit(target)
        origin = headers.get("origin")
        cors_headers = {}
        if origin and origin in self.cors.origins:
            cors_headers = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
            if self.cors.expose:
                cors_headers["Access-Control-Expose-Headers"] = ",".join(self.cors.expose)
        if method == "OPTIONS" and origin and "access-control-request-method" in headers:
            preflight = dict(cors_headers)
            if cors_headers:
                preflight.update(
                    {
                        "Access-Control-Allow-Methods": ",".join(self.cors.methods),
                        "Access-Control-Allow-Headers": ",".join(self.cors.headers),
                        "Access-Control-Max-Age": str(self.cors.max_age),
                    }
                )
            return 204, preflight, b""
        authorizer = self.routes.get((method, url.path))
        if authorizer is None:
            return 404, {"Content-Type": "application/json", **cors_headers}, b'{"message":"Not Found"}'
        event = self._event(method, url.path, url.query, headers, body)
        if authorizer == "AWS_IAM":
            iam = self._iam_context(headers.get("authorization"))
            if iam is None:
                return 403, {"Content-Type": "application/json", **cors_headers}, b'{"message":"Forbidden"}'
            event["requestContext"]["authorizer"] = {"iam": iam}
        else:
            claims = self._jwt_claims(headers.get("authorization"))
            if claims is None:
                answer = b'{"message":"Unauthorized"}'
                return 401, {"Content-Type": "application/json", **cors_headers}, answer
            event["requestContext"]["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
        with self._invoke_lock:
            invocation = self.mint.invoke(event)
        if invocation.error is not None:
            return 502, {"Content-Type": "application/json", **cors_headers}, b'{"message":"Internal Server Error"}'
        answer = invocation.payload
        payload = answer.get("body") or ""
        raw = base64.b64decode(payload) if answer.get("isBase64Encoded") else payload.encode("utf-8")
        return int(answer["statusCode"]), {**(answer.get("headers") or {}), **cors_headers}, raw

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {name.lower(): value for name, value in self.headers.items()}
                status, answer_headers, answer = api.handle(self.command, self.path, headers, body)
                self.send_response(status)
                for name, value in {**answer_headers, DEV_MARKER[0]: DEV_MARKER[1]}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _any  # noqa: N815 (http.server's names)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


class StaticSite:
    """Serves examples/web/ as a separate origin, with /config.js pointing at the local API."""

    def __init__(self, root: Any, config_js: str, port: int = 0) -> None:
        site_root = root
        config = config_js.encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                if path == "/config.js":
                    body, kind = config, "text/javascript"
                else:
                    name = "index.html" if path in ("/", "") else path.lstrip("/")
                    file = (site_root / name).resolve()
                    if site_root.resolve() not in file.parents or not file.is_file():
                        self.send_error(404)
                        return
                    body = file.read_bytes()
                    kind = {"html": "text/html", "js": "text/javascript", "css": "text/css"}.get(
                        file.suffix.lstrip("."), "application/octet-stream"
                    )
                self.send_response(200)
                self.send_header("Content-Type", f"{kind}; charset=utf-8")
                self.send_header("Cache-Control", "no-store")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server, self.url = _serve(Handler, port)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass
class Served:
    api: LocalApi
    issuer: DevIssuer
    site: StaticSite
    access_token: str


@contextmanager
def serve_stack(stack: Any, *, site_root: Any, site_port: int = 0) -> Iterator[Served]:
    """Issuer, gateway and site around an already running local stack (tools.local_stack)."""
    with ExitStack() as running:
        issuer = DevIssuer()
        running.callback(issuer.stop)
        port = site_port or free_port()
        site_origin = f"http://127.0.0.1:{port}"
        mint = stack.start_function("MintTokenFunction")
        api = LocalApi(mint, issuer, Cors.from_template([site_origin]))
        running.callback(api.stop)
        access_token = issuer.access_token(
            {"sub": "dev-visitor-0001", "email": "dev.visitor@example.com", "email_verified": True}
        )
        local_config = {
            "tokenApiUrl": api.url,
            "kustomerWidgetKey": "local-org-tracking-key",
            "kustomerBrandId": "local-brand",
            "devAccessToken": access_token,
        }
        config_js = (
            "// Written by the local dev server (make serve): not for production.\n"
            f"export const config = {json.dumps(local_config, indent=2)};\n"
        )
        site = StaticSite(site_root, config_js, port)
        running.callback(site.stop)
        yield Served(api=api, issuer=issuer, site=site, access_token=access_token)
