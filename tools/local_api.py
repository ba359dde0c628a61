"""A local HTTP API in front of the built mint, behaving like the deployed API Gateway HTTP API.

What the gateway enforces comes from the template as CloudFormation gets it, after the SAM
transform (tools.sam_transform), so the local and the deployed API cannot drift:

- Routes: the paths of TokenApi's OpenAPI body; unknown routes get API Gateway's own 404.
- CORS: its x-amazon-apigateway-cors; the preflight is answered by the "gateway".
- JWT routes: API Gateway's documented JWT authorizer rules, against the issuer and
  audiences of the body's jwtConfiguration (here a local development OIDC issuer: a key
  pair made at start, its discovery document and JWKS on loopback). The token comes with
  or without `Bearer `; its `kid` must be in the issuer's JWKS and its RSA signature valid;
  `iss` must be the issuer; `aud` must be an audience, or, when the token has no `aud`,
  `client_id` must be (Cognito access tokens); `exp`, `nbf` and `iat` are checked; a route
  with scopes needs one of them in the `scope` or `scp` claim. Refused before the function
  runs: 401, or 403 for a missing scope. Claims reach the function as strings.
- IAM routes need SigV4 in AWS. Here they take `Authorization: LocalDevIam <key printed at
  start>` instead, and the function sees the IAM context of a local-dev assumed-role session
  (LOCAL_DEV_CALLER_ARN). Every answer of this server carries
  `X-Local-Dev-Server: not-for-production`.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from tools.harness.lambda_runtime import Invocation
from tools.harness.loopback import Exchange, LoopbackServer, free_port
from tools.harness.template import CloudFormationValues
from tools.sam_transform import translated_template

DEV_AUDIENCE = "local-dev-client"
# The IAM caller of /server/token locally: a made-up local-dev role, allowed by the local mint only.
LOCAL_DEV_ACCOUNT_ID = "123456789012"
LOCAL_DEV_CALLER_ROLE_ARN = f"arn:aws:iam::{LOCAL_DEV_ACCOUNT_ID}:role/local-dev-backend"
LOCAL_DEV_CALLER_ARN = f"arn:aws:sts::{LOCAL_DEV_ACCOUNT_ID}:assumed-role/local-dev-backend/local-dev"
_Answer = tuple[int, dict[str, str], bytes]
DEV_MARKER = ("X-Local-Dev-Server", "not-for-production")
_RSA_ALGORITHMS = ["RS256", "RS384", "RS512"]  # API Gateway's JWT authorizer supports RSA only


class DevIssuer(LoopbackServer):
    """A development OIDC issuer: one RSA key, its discovery document and JWKS on loopback, tokens signed with it."""

    name = "dev-issuer"

    def __init__(self) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = uuid.uuid4().hex[:16]
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key()))
        self._jwks = {"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}]}
        super().__init__()
        self.jwks_url = f"{self.url}/.well-known/jwks.json"
        self.start()

    def handle(self, exchange: Exchange) -> None:
        if exchange.method == "GET" and exchange.path == "/.well-known/jwks.json":
            exchange.reply_json(200, self._jwks)
        elif exchange.method == "GET" and exchange.path == "/.well-known/openid-configuration":
            exchange.reply_json(200, {"issuer": self.url, "jwks_uri": self.jwks_url})
        else:
            exchange.reply_json(404, {"message": "Not Found"})

    def access_token(
        self,
        claims: dict[str, Any],
        *,
        lifetime: int = 3600,
        audience: str | None = DEV_AUDIENCE,
        key: rsa.RSAPrivateKey | None = None,
    ) -> str:
        """A signed token. `audience=None` leaves `aud` out, as in Cognito access tokens (which carry
        client_id); a claim given as None is left out."""
        now = int(time.time())
        payload: dict[str, Any] = {"iss": self.url, "iat": now, "nbf": now, "exp": now + lifetime, "aud": audience}
        payload.update(claims)
        payload = {name: value for name, value in payload.items() if value is not None}
        return jwt.encode(payload, key or self._key, algorithm="RS256", headers={"kid": self.kid})


def _gateway_claim(value: Any) -> str:
    """API Gateway HTTP API hands JWT claims to the function as strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + " ".join(str(item) for item in value) + "]"
    if isinstance(value, (dict,)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


class UnsupportedDefinition(ValueError):
    """The translated API uses something this local gateway does not imitate: fail rather than differ."""


@dataclass(frozen=True)
class Cors:
    origins: tuple[str, ...]
    methods: tuple[str, ...]
    headers: tuple[str, ...]
    expose: tuple[str, ...]
    max_age: int

    @classmethod
    def from_openapi(cls, config: Mapping[str, Any]) -> Cors:
        """From an evaluated x-amazon-apigateway-cors object."""
        unknown = set(config) - {"allowOrigins", "allowMethods", "allowHeaders", "exposeHeaders", "maxAge"}
        if unknown or not isinstance(config.get("allowOrigins"), list):
            raise UnsupportedDefinition(f"x-amazon-apigateway-cors: {config!r}")
        return cls(
            tuple(config["allowOrigins"]),
            tuple(config.get("allowMethods", [])),
            tuple(header.lower() for header in config.get("allowHeaders", [])),
            tuple(header.lower() for header in config.get("exposeHeaders", [])),
            int(config.get("maxAge", 0)),
        )


@dataclass(frozen=True)
class JwtAuthorizerConfig:
    name: str
    issuer: str
    audiences: tuple[str, ...]
    identity_header: str  # lower case


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    authorizer: str | None  # "AWS_IAM", a JWT authorizer's name, or None (open)
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class HttpApiDefinition:
    """Routes, authorizers and CORS of an HTTP API as the translated template defines them."""

    routes: Mapping[tuple[str, str], Route]
    jwt_authorizers: Mapping[str, JwtAuthorizerConfig]
    cors: Cors | None

    @classmethod
    def from_template(
        cls, parameters: Mapping[str, str], *, api: str = "TokenApi", function: str = "MintTokenFunction"
    ) -> HttpApiDefinition:
        template = translated_template(parameters)
        values = CloudFormationValues(template, parameters)
        body = template["Resources"][api]["Properties"]["Body"]
        authorizers = _jwt_authorizers(values.resolve(body.get("components", {}).get("securitySchemes", {})))
        routes = {}
        for path, item in body["paths"].items():
            for method, operation in item.items():
                uri = json.dumps(operation["x-amazon-apigateway-integration"]["uri"])
                if "${" + function not in uri:
                    raise UnsupportedDefinition(f"{method} {path} does not invoke {function}: {uri}")
                authorizer, scopes = _authorization(values.resolve(operation.get("security", [])), authorizers)
                routes[(method.upper(), path)] = Route(method.upper(), path, authorizer, scopes)
        cors_config = body.get("x-amazon-apigateway-cors")
        cors = Cors.from_openapi(values.resolve(cors_config)) if cors_config is not None else None
        return cls(routes, authorizers, cors)


def _jwt_authorizers(schemes: Mapping[str, Any]) -> dict[str, JwtAuthorizerConfig]:
    authorizers = {}
    for name, scheme in schemes.items():
        if scheme.get("x-amazon-apigateway-authtype") == "awsSigv4":
            continue
        authorizer = scheme.get("x-amazon-apigateway-authorizer") or {}
        source = str(authorizer.get("identitySource", ""))
        if authorizer.get("type") != "jwt" or not source.startswith("$request.header."):
            raise UnsupportedDefinition(f"authorizer {name}: {authorizer!r}")
        config = authorizer["jwtConfiguration"]
        authorizers[name] = JwtAuthorizerConfig(
            name, config["issuer"], tuple(config["audience"]), source.removeprefix("$request.header.").lower()
        )
    return authorizers


def _authorization(
    security: list[dict[str, list[str]]], authorizers: Mapping[str, JwtAuthorizerConfig]
) -> tuple[str | None, tuple[str, ...]]:
    if not security:
        return None, ()
    if len(security) != 1 or len(security[0]) != 1:
        raise UnsupportedDefinition(f"alternative security requirements: {security!r}")
    ((name, scopes),) = security[0].items()
    if name != "AWS_IAM" and name not in authorizers:
        raise UnsupportedDefinition(f"unknown authorizer {name}")
    return name, tuple(scopes)


class AuthorizerRefusal(Exception):
    """API Gateway's own answer to a request its authorizer refused."""

    def __init__(self, status: int, error: str, description: str, scopes: tuple[str, ...] = ()) -> None:
        super().__init__(description)
        self.status = status
        self.headers = {
            "Content-Type": "application/json",
            "www-authenticate": f'Bearer scope="{" ".join(scopes)}" error="{error}" error_description="{description}"',
        }
        self.body = b'{"message":"Forbidden"}' if status == 403 else b'{"message":"Unauthorized"}'


def _token_scopes(claims: Mapping[str, Any]) -> list[str]:
    """`scope` (space-separated, RFC 6749) or `scp` (a list or a string), as API Gateway reads them."""
    for name in ("scope", "scp"):
        value = claims.get(name)
        if isinstance(value, str):
            return value.split()
        if isinstance(value, list):
            return [str(item) for item in value]
    return []


class JwtAuthorizer:
    """API Gateway's HTTP API JWT authorizer, as documented, for one authorizer configuration."""

    def __init__(self, config: JwtAuthorizerConfig) -> None:
        self.config = config
        self._keys: jwt.PyJWKClient | None = None
        self._discovery_lock = threading.Lock()

    def _signing_keys(self) -> jwt.PyJWKClient:
        with self._discovery_lock:
            if self._keys is None:
                # Like API Gateway: the JWKS location comes from the issuer's discovery document.
                discovery = f"{self.config.issuer.rstrip('/')}/.well-known/openid-configuration"
                with urllib.request.urlopen(discovery, timeout=5) as answer:  # noqa: S310 (the configured issuer)
                    jwks_uri = json.load(answer)["jwks_uri"]
                self._keys = jwt.PyJWKClient(jwks_uri, cache_keys=True)
            return self._keys

    def authorize(self, headers: Mapping[str, str], scopes: tuple[str, ...]) -> dict[str, Any]:
        """The `requestContext.authorizer.jwt` API Gateway would pass on; raises AuthorizerRefusal."""

        def refuse(description: str) -> AuthorizerRefusal:
            return AuthorizerRefusal(401, "invalid_token", description, scopes)

        token = headers.get(self.config.identity_header, "").strip()
        token = token.removeprefix("Bearer ").strip()  # the prefix is optional for API Gateway
        if not token:
            raise refuse("the token is missing")
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
            if algorithm not in _RSA_ALGORITHMS:
                raise refuse("the token is not signed with an RSA algorithm")
            key = self._signing_keys().get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=_RSA_ALGORITHMS,
                issuer=self.config.issuer,
                options={"require": ["exp", "iss"], "verify_aud": False, "verify_nbf": True, "verify_iat": True},
            )
        except jwt.PyJWTError as error:
            raise refuse(f"the token is not valid: {type(error).__name__}") from None
        if "aud" in claims:
            audience = claims["aud"]
            given = [audience] if isinstance(audience, str) else audience if isinstance(audience, list) else []
            if not set(map(str, given)) & set(self.config.audiences):
                raise refuse("the token does not have a valid audience")
        elif claims.get("client_id") not in self.config.audiences:
            raise refuse("the token does not have a valid audience")  # client_id counts only without aud
        granted = _token_scopes(claims)
        if scopes and not set(granted) & set(scopes):
            raise AuthorizerRefusal(403, "insufficient_scope", "the token does not have a required scope", scopes)
        return {
            "claims": {name: _gateway_claim(value) for name, value in claims.items()},
            "scopes": granted if scopes else None,
        }


class Integration(Protocol):
    """What the gateway invokes: a started LambdaRuntime."""

    def invoke(self, event: Any, timeout: float | None = None) -> Invocation: ...


class LocalApi(LoopbackServer):
    """The gateway: authorizers, CORS, routing, and the built mint in the Lambda runtime behind them."""

    name = "local-api"

    def __init__(self, mint: Integration, definition: HttpApiDefinition) -> None:
        self.mint = mint
        self.definition = definition
        self.cors = definition.cors
        self.routes = definition.routes
        self.authorizers = {name: JwtAuthorizer(config) for name, config in definition.jwt_authorizers.items()}
        self.iam_key = "dev-" + secrets.token_hex(16)
        self._invoke_lock = threading.Lock()  # one container: one invocation at a time
        self.statuses: list[int] = []  # every status answered, in order
        super().__init__()
        self.start()

    def _iam_context(self, authorization: str | None) -> dict[str, Any] | None:
        """Stands in for SigV4: the IAM context of the local-dev assumed-role session (payload 2.0 shape)."""
        if authorization != f"LocalDevIam {self.iam_key}":
            return None
        return {
            "accessKey": "ASIALOCALDEVONLY0000",
            "accountId": LOCAL_DEV_ACCOUNT_ID,
            "callerId": "AROALOCALDEVONLY0000:local-dev",
            "cognitoIdentity": None,
            "principalOrgId": None,
            "userArn": LOCAL_DEV_CALLER_ARN,
            "userId": "AROALOCALDEVONLY0000:local-dev",
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
                "accountId": LOCAL_DEV_ACCOUNT_ID,
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

    def answer(self, method: str, target: str, headers: dict[str, str], body: bytes) -> _Answer:
        status, answer_headers, answer = self._handle(method, target, headers, body)
        self.statuses.append(status)
        return status, answer_headers, answer

    def _handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> _Answer:
        url = urlsplit(target)
        origin = headers.get("origin")
        cors_headers = {}
        if self.cors and origin and origin in self.cors.origins:
            cors_headers = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
            if self.cors.expose:
                cors_headers["Access-Control-Expose-Headers"] = ",".join(self.cors.expose)
        if self.cors and method == "OPTIONS" and origin and "access-control-request-method" in headers:
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
        route = self.routes.get((method, url.path))
        if route is None:
            return 404, {"Content-Type": "application/json", **cors_headers}, b'{"message":"Not Found"}'
        event = self._event(method, url.path, url.query, headers, body)
        if route.authorizer == "AWS_IAM":
            iam = self._iam_context(headers.get("authorization"))
            if iam is None:
                return 403, {"Content-Type": "application/json", **cors_headers}, b'{"message":"Forbidden"}'
            event["requestContext"]["authorizer"] = {"iam": iam}
        elif route.authorizer is not None:
            try:
                jwt_context = self.authorizers[route.authorizer].authorize(headers, route.scopes)
            except AuthorizerRefusal as refusal:
                return refusal.status, {**refusal.headers, **cors_headers}, refusal.body
            event["requestContext"]["authorizer"] = {"jwt": jwt_context}
        with self._invoke_lock:
            invocation = self.mint.invoke(event)
        if invocation.error is not None:
            return 502, {"Content-Type": "application/json", **cors_headers}, b'{"message":"Internal Server Error"}'
        answer = invocation.payload
        payload = answer.get("body") or ""
        raw = base64.b64decode(payload) if answer.get("isBase64Encoded") else payload.encode("utf-8")
        return int(answer["statusCode"]), {**(answer.get("headers") or {}), **cors_headers}, raw

    def handle(self, exchange: Exchange) -> None:
        headers = {name.lower(): value for name, value in exchange.headers.items()}
        status, answer_headers, answer = self.answer(exchange.method, exchange.target, headers, exchange.body)
        exchange.reply(status, answer, {**answer_headers, DEV_MARKER[0]: DEV_MARKER[1]})


class StaticSite(LoopbackServer):
    """Serves examples/web/ as a separate origin, with /config.js pointing at the local API."""

    name = "static-site"

    def __init__(self, root: Path, config_js: str, port: int = 0) -> None:
        self._root = root.resolve()
        self._config = config_js.encode()
        super().__init__(port)
        self.start()

    def handle(self, exchange: Exchange) -> None:
        path = exchange.path
        if path == "/config.js":
            body, kind = self._config, "text/javascript"
        else:
            name = "index.html" if path in ("/", "") else path.lstrip("/")
            file = (self._root / name).resolve()
            if self._root not in file.parents or not file.is_file():
                exchange.reply(404, b"Not Found", {"Content-Type": "text/plain"})
                return
            body = file.read_bytes()
            kind = {"html": "text/html", "js": "text/javascript", "css": "text/css"}.get(
                file.suffix.lstrip("."), "application/octet-stream"
            )
        exchange.reply(200, body, {"Content-Type": f"{kind}; charset=utf-8", "Cache-Control": "no-store"})


@dataclass
class Served:
    api: LocalApi
    issuer: DevIssuer
    site: StaticSite
    access_token: str


def gateway_parameters(issuer_url: str, site_origin: str, authorization_scopes: str = "") -> dict[str, str]:
    """Template parameters of the local stack: the dev issuer, the example page's origin, the local-dev back end."""
    return {
        "KustomerOrg": "demo",
        "JwtIssuer": issuer_url,
        "JwtAudience": DEV_AUDIENCE,
        "AllowedOrigins": site_origin,
        "AuthorizationScopes": authorization_scopes,
        "ServerTokenCallers": LOCAL_DEV_CALLER_ROLE_ARN,
    }


@contextmanager
def serve_stack(stack: Any, *, site_root: Path, site_port: int = 0, authorization_scopes: str = "") -> Iterator[Served]:
    """Issuer, gateway and site around an already running local stack (tools.local_stack)."""
    with ExitStack() as running:
        issuer = DevIssuer()
        running.callback(issuer.stop)
        port = site_port or free_port()
        parameters = gateway_parameters(issuer.url, f"http://127.0.0.1:{port}", authorization_scopes)
        mint = stack.start_function("MintTokenFunction", {"ServerTokenCallers": parameters["ServerTokenCallers"]})
        api = LocalApi(mint, HttpApiDefinition.from_template(parameters))
        running.callback(api.stop)
        visitor: dict[str, Any] = {
            "sub": "dev-visitor-0001",
            "email": "dev.visitor@example.com",
            "email_verified": True,
        }
        if authorization_scopes:
            visitor["scope"] = authorization_scopes.replace(",", " ")
        access_token = issuer.access_token(visitor)
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
