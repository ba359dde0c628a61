"""Day two: every change of the mint's settings, layers or code reaches what API Gateway invokes.

The routes invoke the mint's `live` alias. A deploy that changes a value the mint's configuration
holds, the shared layer's bundle or the mint's code must leave the alias on a new published
version (a new AWS::Lambda::Version logical id, or a changed create-only property of the one
there, which CloudFormation replaces). Checked on the template as CloudFormation gets it, after
the SAM transform, one change at a time, with tests.support.cloudformation's model of an update.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.cloudformation import Deployment, parameters_referenced
from tests.support.project import REQUIRED_PARAMETERS, ROOT
from tools.harness.template import load_template
from tools.sam_transform import translated_template

SOURCE = load_template()
SPECS: dict[str, Any] = SOURCE["Parameters"]
MINT = "MintTokenFunction"
# Properties of the function that are not its configuration: the routes, and what publishes its versions.
NOT_CONFIGURATION = {"Events", "AutoPublishAlias", "AutoPublishAliasAllProperties", "VersionDescription"}

# A second valid value for the parameters that have no AllowedValues to pick from.
OTHER_VALUE = {
    "ExternalIdClaim": "custom:visitor_id",
    "EmailClaim": "https://shop.example.com/email",
    "EmailVerifiedClaim": "https://shop.example.com/email_verified",
    "ServerTokenCallers": "arn:aws:iam::123456789012:role/a",
    "SecretsExtensionLayerArn": (
        "arn:aws:lambda:us-east-1:177933569100:layer:AWS-Parameters-and-Secrets-Lambda-Extension-Arm64:12"
    ),
}


def _mint_configuration_parameters() -> list[str]:
    """The template parameters that reach the mint's configuration (Globals included, through conditions too)."""
    own = SOURCE["Resources"][MINT]["Properties"]
    merged = {**SOURCE["Globals"]["Function"], **own, "GlobalEnvironment": SOURCE["Globals"]["Function"]["Environment"]}
    configuration = {key: value for key, value in merged.items() if key not in NOT_CONFIGURATION}
    return sorted(parameters_referenced(configuration, SOURCE["Conditions"]) & set(SPECS))


def _other_value(name: str, value: str) -> str:
    spec = SPECS[name]
    if name in OTHER_VALUE:
        return OTHER_VALUE[name]
    if "AllowedValues" in spec:
        return next(str(other) for other in spec["AllowedValues"] if str(other) != value)
    if spec["Type"] == "Number":
        number = int(value)
        return str(number + 1 if number + 1 <= int(spec.get("MaxValue", number + 1)) else number - 1)
    raise AssertionError(f"no second value for {name}: add one to OTHER_VALUE")


def _invoked(parameters: dict[str, str], template: Path | None = None) -> dict[str, str]:
    translated = translated_template(parameters) if template is None else translated_template(parameters, template)
    return Deployment(translated, parameters).invoked_by_routes("TokenApi")


def _packaged(tmp_path: Path, *, mint_code: str, layer: str) -> Path:
    """template.yaml as `sam package` leaves it: the mint's code and the layer's bundle at S3 keys."""
    source = (ROOT / "template.yaml").read_text(encoding="utf-8")
    packaged = source.replace("CodeUri: functions/mint/", f"CodeUri: s3://artifacts/{mint_code}").replace(
        "ContentUri: layers/shared/", f"ContentUri: s3://artifacts/{layer}"
    )
    assert packaged.count("s3://artifacts/") == 2
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "packaged.yaml"
    path.write_text(packaged, encoding="utf-8")
    return path


def test_the_parameters_that_reach_the_mint_are_found() -> None:
    # Given the template as written
    # When the parameters its mint's configuration refers to are collected
    found = set(_mint_configuration_parameters())
    # Then every setting the issue of stale versions named is among them (the list is not empty or partial)
    assert {
        "TokenIdentity",
        "ExternalIdClaim",
        "EmailClaim",
        "RequireEmailVerified",
        "EmailVerifiedClaim",
        "ServerTokenCallers",
        "SecretCacheTtlSeconds",
        "SecretMaxStaleSeconds",
        "FunctionMemorySize",
        "SecretsExtensionLayerArn",
        "EnableSnapStart",
        "LogLevel",
        "TracingMode",
    } <= found


def test_the_translated_mint_refers_to_no_other_parameter() -> None:
    # Given the mint as CloudFormation gets it
    function = translated_template(REQUIRED_PARAMETERS)["Resources"][MINT]
    # When the parameters its properties refer to are collected
    referenced = parameters_referenced(function["Properties"], SOURCE["Conditions"]) & set(SPECS)
    # Then they are the ones the tests below vary
    assert referenced == set(_mint_configuration_parameters())


@pytest.mark.parametrize("name", _mint_configuration_parameters())
def test_a_changed_setting_reaches_what_the_routes_invoke(name: str) -> None:
    # Given a stack deployed with default settings
    before = _invoked(REQUIRED_PARAMETERS)
    value = REQUIRED_PARAMETERS.get(name, str(SPECS[name].get("Default", "")))
    # When it is updated with one setting of the mint changed
    after = _invoked({**REQUIRED_PARAMETERS, name: _other_value(name, value)})
    # Then every route invokes something new: the alias moved to a newly published version
    assert before.keys() == after.keys() == {"POST /token", "POST /server/token"}
    assert all(after[route] != before[route] for route in before), (name, before, after)


def test_removing_a_back_end_from_the_server_token_callers_reaches_the_routes() -> None:
    # Given a stack that lets two back ends call /server/token
    callers = "arn:aws:iam::123456789012:role/a,arn:aws:iam::123456789012:role/b"
    before = _invoked({**REQUIRED_PARAMETERS, "ServerTokenCallers": callers})
    # When one of them is removed (its role was stolen)
    after = _invoked({**REQUIRED_PARAMETERS, "ServerTokenCallers": "arn:aws:iam::123456789012:role/a"})
    # Then /server/token invokes a version that no longer lists it
    assert after["POST /server/token"] != before["POST /server/token"]


@pytest.mark.parametrize("changed", ["mint code", "layer bundle"])
def test_a_new_bundle_reaches_what_the_routes_invoke(tmp_path: Path, changed: str) -> None:
    # Given a packaged stack
    before = _invoked(REQUIRED_PARAMETERS, _packaged(tmp_path / "a", mint_code="mint-1.zip", layer="layer-1.zip"))
    # When a release changes only the mint's code, or only the shared layer (callers, identity, signing...)
    bundles = {"mint_code": "mint-2.zip", "layer": "layer-1.zip"}
    if changed == "layer bundle":
        bundles = {"mint_code": "mint-1.zip", "layer": "layer-2.zip"}
    after = _invoked(REQUIRED_PARAMETERS, _packaged(tmp_path / "b", **bundles))
    # Then every route invokes a newly published version
    assert all(after[route] != before[route] for route in before), (changed, before, after)


def test_an_unchanged_deploy_keeps_what_the_routes_invoke(tmp_path: Path) -> None:
    # Given a packaged stack
    bundles = {"mint_code": "mint-1.zip", "layer": "layer-1.zip"}
    before = _invoked(REQUIRED_PARAMETERS, _packaged(tmp_path / "a", **bundles))
    # When it is deployed again with nothing changed
    after = _invoked(REQUIRED_PARAMETERS, _packaged(tmp_path / "b", **bundles))
    # Then the routes keep the version they had: no needless publish
    assert after == before


def test_nothing_invokes_a_version_of_the_refresher() -> None:
    # Given the template as CloudFormation gets it
    translated = translated_template(REQUIRED_PARAMETERS)
    resources = translated["Resources"]
    deployment = Deployment(translated, REQUIRED_PARAMETERS)
    # When the refresher's invokers are read: the rotation schedule and the scheduler's target
    rotation = deployment.values.resolve(resources["SigningSecretRotation"]["Properties"]["RotationLambdaARN"])
    scheduled = resources["RefreshSecretFunctionScheduledRefresh"]["Properties"]
    schedule = deployment.values.resolve(scheduled["Target"]["Arn"])
    versions = [
        name
        for name, resource in resources.items()
        if resource["Type"] in ("AWS::Lambda::Version", "AWS::Lambda::Alias")
        and resource["Properties"]["FunctionName"] == {"Ref": "RefreshSecretFunction"}
    ]
    # Then both invoke the function itself ($LATEST), so its settings and code apply on the next run
    assert rotation == schedule == f"{deployment.physical('RefreshSecretFunction')}.Arn"
    assert versions == []


EVERY_SETTING_CHANGED = {**REQUIRED_PARAMETERS, **OTHER_VALUE, "EnableSnapStart": "true", "TracingMode": "PassThrough"}


@pytest.mark.parametrize(
    "parameters", [REQUIRED_PARAMETERS, EVERY_SETTING_CHANGED], ids=["defaults", "every setting changed"]
)
def test_the_settings_record_holds_only_what_the_mint_runs_with(parameters: dict[str, str]) -> None:
    # Given a stack as CloudFormation gets it
    deployment = Deployment(translated_template(parameters), parameters)
    function = deployment.values.resolve(deployment.resources[MINT]["Properties"], MINT)
    # When the AppConfig record whose number the published version carries is read
    record = json.loads(deployment.values.resolve(deployment.resources["MintSettingsVersion"]["Properties"]["Content"]))
    # Then it is valid JSON and every value in it is one the function's configuration holds, so a new
    # record always comes with a changed function, and Lambda publishes a new version for it
    assert record["role"] == function["Role"]
    assert record["logGroup"] == function["LoggingConfig"]["LogGroup"]
    assert record["environment"].items() <= function["Environment"]["Variables"].items()
    assert [layer for layer in record["layers"] if layer] == function["Layers"]
    assert record["memorySize"] == str(function["MemorySize"])
    assert record["tracing"] == function["TracingConfig"]["Mode"]
    assert (record["snapStart"] == "true") == (function.get("SnapStart") == {"ApplyOn": "PublishedVersions"})
    assert set(record) == {"role", "logGroup", "environment", "layers", "memorySize", "tracing", "snapStart"}


def test_the_settings_record_refers_to_everything_the_mint_refers_to() -> None:
    # Given the mint and its settings record as CloudFormation gets them
    translated = translated_template(REQUIRED_PARAMETERS)
    resources = translated["Resources"]
    # When the parameters and resources each refers to are collected
    function = parameters_referenced(resources[MINT]["Properties"], translated["Conditions"])
    record = parameters_referenced(resources["MintSettingsVersion"]["Properties"]["Content"], translated["Conditions"])
    # Then a new value of any of them (a parameter, a replaced role, log group or secret, the next
    # layer version) makes a new record, so a new published version, beside the changed function
    assert function - {"AWS::NoValue"} <= record, function - record
