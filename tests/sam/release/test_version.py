"""One version: kustomer_token.__version__ (what the running code knows and sends to Kustomer), and the same in
pyproject.toml (what the release workflow tags), the template (what a deployed stack shows), the changelog and the
nested example."""

from __future__ import annotations

import re

from kustomer_token import __version__
from kustomer_token.kustomer import USER_AGENT
from tests.support.project import REQUIRED_PARAMETERS, ROOT, project_version
from tools.harness.template import load_template
from tools.sam_transform import translated_template

SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?$")
RELEASE_HEADING = re.compile(r"^## \[(?P<version>[^\]]+)\] - (?P<date>\d{4}-\d{2}-\d{2})$", re.MULTILINE)


def test_the_version_is_a_semantic_version() -> None:
    # Given the version pyproject.toml states (equal to kustomer_token.__version__, checked below)
    # When it is read
    version = project_version()
    # Then it is MAJOR.MINOR.PATCH (with an optional pre-release), as the release tags v<version> expect
    assert SEMVER.fullmatch(version), version


def test_every_place_that_names_the_version_names_the_package_s_version() -> None:
    # Given the package's __version__: the layer ships as source, so the code has no installed metadata to read
    template = load_template()
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    nested = load_template(ROOT / "examples" / "nested" / "template.yaml")["Resources"]
    description = re.search(r"kustomer-chat-token (\S+)\.$", " ".join(template["Description"].split()))
    newest_release = RELEASE_HEADING.search(changelog)
    user_agent = re.fullmatch(r"kustomer-chat-token/(\S+) \(python; urllib3\)", USER_AGENT)
    # When every other place that states a version is read
    places = {
        "pyproject.toml [project] version": project_version(),
        "template.yaml Description": description and description[1],
        "template.yaml Outputs.Version": template["Outputs"]["Version"]["Value"],
        "CHANGELOG.md newest release heading": newest_release and newest_release["version"],
        "User-Agent sent to Kustomer": user_agent and user_agent[1],
    }
    for name, resource in nested.items():
        if resource["Type"] == "AWS::Serverless::Application":
            location = re.search(r"/kustomer-chat-token/([^/]+)/packaged\.yaml$", resource["Properties"]["Location"])
            places[f"examples/nested {name} Location"] = location and location[1]
    # Then each names that version
    assert places == dict.fromkeys(places, __version__)
    assert any(place.startswith("examples/nested") for place in places)


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
