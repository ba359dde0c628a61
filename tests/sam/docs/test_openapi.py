"""docs/openapi.yaml: valid OpenAPI 3.1 that agrees with what CloudFormation deploys and with what the mint answers.

The routes, methods and authorizers come from the template after the SAM transform (what API
Gateway imports); the answers are the mint's own, collected by running it through every outcome
of the contract (tests.support.observed_run). Answers API Gateway gives by itself ({"message"})
are described from AWS's documentation and not produced here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jwt
import pytest
import yaml
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from openapi_spec_validator.validation import OpenAPIV31SpecValidator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from kustomer_token.identity import SERVER_TOKEN_REQUEST_SCHEMA
from tests.support.cloudwatch import Deployed
from tests.support.observed_run import Observations

ROOT = Path(__file__).resolve().parents[3]
DESCRIPTION = ROOT / "docs" / "openapi.yaml"
# The function's answers to requests outside its routes (which the deployed API refuses itself).
OFF_ROUTE_RESPONSES = {404: "NotFound", 405: "MethodNotAllowed"}
CONTRACT_CODES = {
    "invalid_request",
    "unauthenticated",
    "email_not_verified",
    "caller_not_allowed",
    "not_found",
    "method_not_allowed",
    "signing_secret_unavailable",
    "internal_error",
}


@pytest.fixture(scope="module")
def description() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(DESCRIPTION.read_text(encoding="utf-8"))
    return document


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _at(document: dict[str, Any], pointer: str) -> Any:
    node: Any = document
    for part in pointer.strip("/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _followed(document: dict[str, Any], pointer: str) -> tuple[str, Any]:
    """(pointer, node) at a pointer, following $ref to other places in the document."""
    node = _at(document, pointer)
    while isinstance(node, dict) and "$ref" in node:
        pointer = node["$ref"].removeprefix("#")
        node = _at(document, pointer)
    return pointer, node


def _validator(document: dict[str, Any], pointer: str) -> Draft202012Validator:
    """A JSON Schema 2020-12 validator (OpenAPI 3.1's dialect) for the schema at a pointer of the document."""
    resource = Resource.from_contents(document, default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource("urn:openapi", resource)
    return Draft202012Validator({"$ref": f"urn:openapi#{pointer}"}, registry=registry)


def _operations(paths: dict[str, Any]) -> dict[tuple[str, str], Any]:
    methods = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
    return {
        (path, method): operation
        for path, item in paths.items()
        for method, operation in item.items()
        if method in methods
    }


def test_the_description_is_valid_openapi_3_1(description: dict[str, Any]) -> None:
    # When a maintained validator reads docs/openapi.yaml
    validate(description, cls=OpenAPIV31SpecValidator)
    # Then it is valid, and it is OpenAPI 3.1
    assert description["openapi"].startswith("3.1.")


def test_the_routes_methods_and_authorizers_are_those_cloudformation_deploys(description: dict[str, Any]) -> None:
    # Given the HTTP API's body as the SAM transform writes it
    deployed = Deployed()
    body = deployed.resources["TokenApi"]["Properties"]["Body"]
    deployed_operations = {
        key: [name for requirement in deployed.resolve(operation["security"]) for name in requirement]
        for key, operation in _operations(body["paths"]).items()
    }
    described_operations = {
        key: [name for requirement in operation["security"] for name in requirement]
        for key, operation in _operations(description["paths"]).items()
    }
    # Then the description has exactly the same routes and methods, each with the same authorizer
    assert described_operations == deployed_operations
    assert sorted(deployed_operations) == [("/server/token", "post"), ("/token", "post")]
    # and each authorizer is described as what it is: a bearer JWT, or SigV4
    deployed_schemes = body["components"]["securitySchemes"]
    described_schemes = description["components"]["securitySchemes"]
    for name in {name for names in deployed_operations.values() for name in names}:
        scheme = deployed_schemes[name]
        if scheme.get("x-amazon-apigateway-authorizer", {}).get("type") == "jwt":
            assert described_schemes[name] | {"description": ""} == {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "",
            }
        else:
            assert scheme["x-amazon-apigateway-authtype"] == "awsSigv4"
            assert described_schemes[name]["x-amazon-apigateway-authtype"] == "awsSigv4"
            assert {key: described_schemes[name][key] for key in ("type", "in", "name")} == {
                key: scheme[key] for key in ("type", "in", "name")
            }


def _response_pointer(description: dict[str, Any], method: str, path: str, status: int) -> str:
    if method.lower() in description["paths"].get(path, {}):
        responses = f"/paths/{_escape(path)}/{method.lower()}/responses"
        assert str(status) in _at(description, responses), f"{method} {path}: {status} is not described"
        pointer, _ = _followed(description, f"{responses}/{status}")
        return pointer
    assert status in OFF_ROUTE_RESPONSES, f"{method} {path} is not described"
    pointer, _ = _followed(description, f"/components/responses/{OFF_ROUTE_RESPONSES[status]}")
    return pointer


def test_every_answer_the_mint_gave_is_described_with_its_body_and_headers(
    description: dict[str, Any], observed: Observations
) -> None:
    seen: set[tuple[int, str]] = set()
    for observation in observed.answers:
        # Given an answer the mint gave, and the response the description has for its route and status
        answer = observation.answer
        pointer = _response_pointer(description, observation.method, observation.path, answer.status)
        response = _at(description, pointer)
        where = f"{observation.method} {observation.path} {answer.status}"
        # Then the body is JSON that fits the described schema
        assert answer.headers["content-type"] == "application/json"
        assert list(response["content"]) == ["application/json"]
        errors = list(_validator(description, f"{pointer}/content/application~1json/schema").iter_errors(answer.body))
        assert errors == [], f"{where}: {[error.message for error in errors]}"
        # And every header it carries is described, with a value that fits, and every required one is there
        headers = {
            name.lower(): _followed(description, f"{pointer}/headers/{_escape(name)}")
            for name in response.get("headers", {})
        }
        for name, value in answer.headers.items():
            if name == "content-type":
                continue
            assert name in headers, f"{where}: the header {name} is not described"
            header_pointer, _ = headers[name]
            assert list(_validator(description, f"{header_pointer}/schema").iter_errors(value)) == []
        for name, (_, header) in headers.items():
            if header.get("required"):
                assert name in answer.headers, f"{where}: the required header {name} is missing"
        seen.add((answer.status, answer.body.get("error", "")))
    # And the run produced every answer of the contract
    assert {code for _, code in seen} == CONTRACT_CODES | {""}
    assert {status for status, _ in seen} == {200, 400, 401, 403, 404, 405, 500, 503}


def test_the_described_error_codes_are_exactly_those_the_mint_gives(
    description: dict[str, Any], observed: Observations
) -> None:
    described = set(description["components"]["schemas"]["Error"]["properties"]["error"]["enum"])
    given = {answer.answer.body["error"] for answer in observed.answers if "error" in answer.answer.body}
    assert described == given == CONTRACT_CODES


def _media_types(node: Any, pointer: str = "") -> list[str]:
    """Pointers of every media type object (request bodies and responses) in the description."""
    found = []
    if isinstance(node, dict):
        if "schema" in node and ("examples" in node or "example" in node):
            found.append(pointer)
        for key, value in node.items():
            found += _media_types(value, f"{pointer}/{_escape(str(key))}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _media_types(value, f"{pointer}/{index}")
    return found


def test_every_example_fits_its_schema(description: dict[str, Any]) -> None:
    media_types = _media_types(description)
    assert len(media_types) >= 12
    for pointer in media_types:
        media_type = _at(description, pointer)
        examples = [example["value"] for example in media_type.get("examples", {}).values()]
        examples += [media_type["example"]] if "example" in media_type else []
        validator = _validator(description, f"{pointer}/schema")
        for example in examples:
            assert list(validator.iter_errors(example)) == [], f"{pointer}: {example}"


def test_the_example_tokens_carry_exactly_the_identifiers_and_times_of_their_answer(
    description: dict[str, Any],
) -> None:
    examples = description["components"]["responses"]["TokenIssued"]["content"]["application/json"]["examples"]
    for example in (example["value"] for example in examples.values()):
        assert jwt.get_unverified_header(example["jwtToken"]) == {"alg": "HS256", "typ": "JWT"}
        claims = jwt.decode(example["jwtToken"], options={"verify_signature": False})
        identifiers = {key: example[key] for key in ("externalId", "email") if key in example}
        assert claims == {**identifiers, "iat": example["issuedAt"]}
        assert example["expiresAt"] == example["issuedAt"] + 900


def test_the_request_body_is_described_with_the_schema_the_mint_enforces(description: dict[str, Any]) -> None:
    described = {
        key: value
        for key, value in description["components"]["schemas"]["ServerTokenRequest"].items()
        if key != "description"
    }
    enforced = {key: value for key, value in SERVER_TOKEN_REQUEST_SCHEMA.items() if key != "$schema"}
    assert described == enforced
