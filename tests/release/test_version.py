"""One version: pyproject.toml's, and the same in the template (what a deployed stack shows) and the changelog."""

from __future__ import annotations

import re

from tests.release.project import REQUIRED_PARAMETERS, ROOT, project_version
from tools.harness.template import load_template
from tools.sam_transform import translated_template

SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?$")
RELEASE_HEADING = re.compile(r"^## \[(?P<version>[^\]]+)\] - (?P<date>\d{4}-\d{2}-\d{2})$", re.MULTILINE)


def test_the_version_is_a_semantic_version() -> None:
    # Given pyproject.toml, the one place the version is set
    # When it is read
    version = project_version()
    # Then it is MAJOR.MINOR.PATCH (with an optional pre-release), as the release tags v<version> expect
    assert SEMVER.fullmatch(version), version


def test_the_template_shows_the_version_in_its_description_and_its_version_output() -> None:
    # Given template.yaml
    template = load_template()
    # When a deployer looks at the stack's description and outputs
    description = " ".join(template["Description"].split())
    output = template["Outputs"]["Version"]
    # Then both name the project's version
    assert description.endswith(f"kustomer-chat-token {project_version()}."), description
    assert output["Value"] == project_version()
    assert "version" in output["Description"].lower()


def test_cloudformation_gets_the_version_output_after_the_sam_transform() -> None:
    # Given the template as CloudFormation receives it after the SAM transform
    translated = translated_template(REQUIRED_PARAMETERS)
    # When its outputs are read
    # Then the Version output is a literal, the project's version, and the description carries it too
    assert translated["Outputs"]["Version"]["Value"] == project_version()
    assert project_version() in translated["Description"]


def test_the_changelog_s_latest_release_is_the_version_and_unreleased_comes_first() -> None:
    # Given CHANGELOG.md in the Keep a Changelog format
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    # When its release headings are read
    releases = [match["version"] for match in RELEASE_HEADING.finditer(changelog)]
    # Then the newest is the project's version, each version appears once, and Unreleased sits above them
    assert releases, "CHANGELOG.md has no '## [x.y.z] - YYYY-MM-DD' heading"
    assert releases[0] == project_version()
    assert len(releases) == len(set(releases))
    assert changelog.index("## [Unreleased]") < changelog.index(f"## [{releases[0]}]")


def test_the_licence_is_apache_2_and_the_package_says_so() -> None:
    # Given LICENSE and pyproject.toml
    licence = (ROOT / "LICENSE").read_text(encoding="utf-8")
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    # When they are read
    # Then LICENSE is the whole Apache License 2.0 and the package declares that licence
    assert "Apache License" in licence
    assert "Version 2.0, January 2004" in licence
    assert "END OF TERMS AND CONDITIONS" in licence
    assert 'license = "Apache-2.0"' in pyproject
