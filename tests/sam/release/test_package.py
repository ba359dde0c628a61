"""`make package` against a local S3: the release artifact CloudFormation deploys with nothing else.

moto's server stands in for S3 (started and stopped here, fake credentials); AWS_ENDPOINT_URL_S3
points `sam package` at it, as the standard variable points any AWS SDK. The checks: every code
and layer location in dist/packaged.yaml is an s3:// object that exists, each zip holds what its
function or layer runs and nothing else, and cfn-lint passes on the packaged template.
"""

from __future__ import annotations

import importlib.util
import io
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import boto3
import pytest

from tests.support.project import ROOT, project_version
from tools.harness.services import MotoServer
from tools.harness.template import load_template

BUCKET = "kustomer-chat-token-releases"
PREFIX = f"kustomer-chat-token/{project_version()}"
DIST = ROOT / "dist"
CODE_LOCATIONS = {"AWS::Serverless::Function": "CodeUri", "AWS::Serverless::LayerVersion": "ContentUri"}
# What no artifact may carry: tests, environments, build and tool leftovers.
FORBIDDEN_PARTS = {"tests", "test", ".venv", "venv", "site-packages", ".aws-sam", "node_modules", ".pytest_cache"}
PYC_TAG = ".cpython-313.pyc"  # Lambda's python3.13 reads only this bytecode
ELF_MAGIC = b"\x7fELF"
EM_AARCH64 = 0xB7


@dataclass
class Package:
    template: dict[str, Any]
    artifacts: dict[str, zipfile.ZipFile]  # logical id -> its zip, downloaded from the local S3
    locations: dict[str, str]  # logical id -> its s3:// location
    make: subprocess.CompletedProcess[str]


def _run_make_package(s3_url: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "AWS_ENDPOINT_URL_S3": s3_url}
    return subprocess.run(
        ["make", "package", f"S3_BUCKET={BUCKET}", f"S3_PREFIX={PREFIX}"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )


@pytest.fixture(scope="module")
def package(_aws_test_environment: None) -> Iterator[Package]:
    """`make package` run once into an empty bucket of a fresh local S3, and what it left there."""
    with MotoServer() as server:
        s3 = boto3.client("s3", endpoint_url=server.url, region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        made = _run_make_package(server.url)
        assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-3000:]
        template = load_template(DIST / "packaged.yaml")
        locations, artifacts = {}, {}
        for name, resource in template["Resources"].items():
            key = CODE_LOCATIONS.get(resource["Type"])
            if key:
                location = resource["Properties"][key]
                locations[name] = location
                bucket, _, object_key = str(location).removeprefix("s3://").partition("/")
                body = s3.get_object(Bucket=bucket, Key=object_key)["Body"].read()
                artifacts[name] = zipfile.ZipFile(io.BytesIO(body))
        yield Package(template, artifacts, locations, made)


def _names(artifact: zipfile.ZipFile) -> list[str]:
    return [name for name in artifact.namelist() if not name.endswith("/")]


def test_make_package_writes_only_the_packaged_template(package: Package) -> None:
    # Given `make package` ran
    # When dist/ is listed
    # Then it holds packaged.yaml and nothing else a deployer would have to handle
    assert sorted(path.name for path in DIST.iterdir()) == ["packaged.yaml"]


def test_every_code_location_is_an_object_in_the_bucket_under_the_prefix(package: Package) -> None:
    # Given the packaged template
    # When its code and layer locations are read
    # Then the two functions and the layer point into the bucket, under the prefix, and each object was downloaded
    assert set(package.locations) == {"MintTokenFunction", "RefreshSecretFunction", "SharedLayer"}
    for name, location in package.locations.items():
        assert isinstance(location, str), (name, location)
        assert location.startswith(f"s3://{BUCKET}/{PREFIX}/"), (name, location)
        assert package.artifacts[name].testzip() is None, name


def test_nothing_in_the_packaged_template_points_at_a_local_path(package: Package) -> None:
    # Given the packaged template
    # When every location-like property of every resource is read
    local = []
    for name, resource in package.template["Resources"].items():
        for key in ("CodeUri", "ContentUri", "DefinitionUri", "Location", "Code", "Content", "TemplateURL"):
            value = resource.get("Properties", {}).get(key)
            if isinstance(value, str) and not value.startswith(("s3://", "https://")):
                local.append((name, key, value))
    # Then none is a path on this machine
    assert local == []


def test_the_packaged_template_is_this_version(package: Package) -> None:
    assert package.template["Outputs"]["Version"]["Value"] == project_version()


@pytest.mark.parametrize("function", ["mint", "refresh"])
def test_each_function_zip_holds_its_handler_and_its_313_bytecode_only(package: Package, function: str) -> None:
    # Given a function's zip from the bucket
    logical_id = {"mint": "MintTokenFunction", "refresh": "RefreshSecretFunction"}[function]
    artifact = package.artifacts[logical_id]
    # When its files are listed
    # Then it is app.py (the source of this checkout) and its bytecode for Python 3.13, nothing else
    assert sorted(_names(artifact)) == ["__pycache__/app.cpython-313.pyc", "app.py"]
    assert artifact.read("app.py") == (ROOT / "functions" / function / "app.py").read_bytes()
    assert artifact.read("__pycache__/app.cpython-313.pyc")[:4] == importlib.util.MAGIC_NUMBER


def test_the_layer_zip_holds_the_package_under_python(package: Package) -> None:
    # Given the layer's zip from the bucket
    names = set(_names(package.artifacts["SharedLayer"]))
    # When it is compared with the package's source
    source = ROOT / "layers" / "shared" / "kustomer_token"
    modules = sorted(path.relative_to(source.parent).as_posix() for path in source.rglob("*.py"))
    # Then every module is there under python/ (Lambda's path for layers), with its 3.13 bytecode
    assert modules
    for module in modules:
        assert f"python/{module}" in names, module
        compiled = PurePosixPath(f"python/{module}")
        assert f"{compiled.parent}/__pycache__/{compiled.stem}.cpython-313.pyc" in names, module
    assert all(name.startswith("python/") for name in names)


def test_the_layer_zip_holds_each_pinned_dependency_at_its_pinned_version(package: Package) -> None:
    # Given the layer's pinned requirements and its zip
    pinned = (ROOT / "layers" / "shared" / "requirements.txt").read_text(encoding="utf-8").splitlines()
    dist_infos = {PurePosixPath(name).parts[1].lower() for name in _names(package.artifacts["SharedLayer"])}
    # When each requirement is looked for
    # Then its dist-info at exactly the pinned version is in the zip
    for requirement in (line.split()[0] for line in pinned if line[:1].isalnum()):
        name, version = requirement.split("==")
        assert f"{name.lower().replace('-', '_')}-{version}.dist-info" in dist_infos, requirement


@pytest.mark.parametrize("logical_id", ["MintTokenFunction", "RefreshSecretFunction", "SharedLayer"])
def test_no_zip_carries_tests_environments_or_bytecode_for_another_python(package: Package, logical_id: str) -> None:
    # Given an artifact's zip
    names = _names(package.artifacts[logical_id])
    # When its paths are checked
    leftovers = [name for name in names if FORBIDDEN_PARTS & set(PurePosixPath(name).parts)]
    foreign_bytecode = [name for name in names if name.endswith(".pyc") and not name.endswith(PYC_TAG)]
    stray = [name for name in names if PurePosixPath(name).name in {"pyvenv.cfg", "Makefile", "requirements.txt"}]
    # Then there is no test, no virtual environment or build file, and only cpython-313 bytecode
    assert leftovers == []
    assert foreign_bytecode == []
    assert stray == []


def test_native_code_in_the_layer_is_for_arm64(package: Package) -> None:
    # Given the layer's zip (the functions run on arm64)
    artifact = package.artifacts["SharedLayer"]
    # When every ELF file in it is read
    machines = {}
    for name in _names(artifact):
        header = artifact.read(name)[:20]
        if header[:4] == ELF_MAGIC:
            machines[name] = int.from_bytes(header[18:20], "little")
    # Then each is aarch64 code
    assert {name: machine for name, machine in machines.items() if machine != EM_AARCH64} == {}


def test_cfn_lint_passes_on_the_packaged_template(package: Package) -> None:
    # Given dist/packaged.yaml
    # When cfn-lint checks it, as CloudFormation deployers would before deploying it
    linted = subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), str(DIST / "packaged.yaml")],
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    # Then it reports nothing
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_make_package_refuses_to_run_without_a_bucket() -> None:
    # Given no S3_BUCKET
    environment = {key: value for key, value in os.environ.items() if key != "S3_BUCKET"}
    # When `make package` is run
    refused = subprocess.run(
        ["make", "package"], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=30, check=False
    )
    # Then it stops before building anything and says what it needs
    assert refused.returncode != 0
    assert "make package needs S3_BUCKET=" in refused.stderr
    assert "sam build" not in refused.stdout
