"""examples/nested: a parent stack that nests the release and passes its outputs on, consistent with template.yaml.

`make validate` and `make cfn-lint` run `sam validate --lint` and cfn-lint on it; these tests check
that it fits the stack it nests: the parameters it passes and the outputs it reads exist.
"""

from __future__ import annotations

from typing import Any

from tests.support.project import REQUIRED_PARAMETERS, ROOT, project_version
from tools.harness.template import load_template
from tools.sam_transform import translated_template

EXAMPLE = ROOT / "examples" / "nested" / "template.yaml"
STACK = load_template()


def _nested_applications() -> dict[str, Any]:
    resources: dict[str, Any] = load_template(EXAMPLE)["Resources"]
    return {name: item for name, item in resources.items() if item["Type"] == "AWS::Serverless::Application"}


def test_the_example_becomes_a_nested_stack_of_the_current_release() -> None:
    # Given the example, with the deployer's values for its parameters
    # When the SAM transform expands it, as CloudFormation will
    resources = translated_template(REQUIRED_PARAMETERS, EXAMPLE)["Resources"]
    # Then there are two nested stacks (one per Kustomer org), each with this version's packaged.yaml in S3
    stacks = {name: item for name, item in resources.items() if item["Type"] == "AWS::CloudFormation::Stack"}
    assert sorted(stacks) == ["ChatToken", "ChatTokenSecondOrg"]
    for stack in stacks.values():
        url = stack["Properties"]["TemplateURL"]
        assert url.startswith("https://"), url
        assert ".s3." in url, url
        assert url.endswith(f"/kustomer-chat-token/{project_version()}/packaged.yaml"), url


def test_the_two_nested_stacks_serve_different_kustomer_orgs() -> None:
    # Given the two nested applications
    applications = _nested_applications()
    # When the org each is given is read
    orgs = {name: item["Properties"]["Parameters"]["KustomerOrg"] for name, item in applications.items()}
    # Then each serves its own org; CloudFormation names each nested stack apart, so they stand alone
    assert orgs == {"ChatToken": {"Ref": "KustomerOrg"}, "ChatTokenSecondOrg": {"Ref": "SecondKustomerOrg"}}


def test_it_passes_every_required_parameter_and_only_parameters_the_stack_has() -> None:
    # Given the parameters the example passes to each nested stack
    for application in _nested_applications().values():
        passed = set(application["Properties"]["Parameters"])
        # When they are compared with template.yaml's
        declared = set(STACK["Parameters"])
        required = {name for name, parameter in STACK["Parameters"].items() if "Default" not in parameter}
        # Then none is unknown to the stack, and none the stack requires is missing
        assert passed <= declared, passed - declared
        assert required <= passed, required - passed


def test_every_output_it_passes_on_is_an_output_of_the_stack() -> None:
    # Given the example's outputs, read from the nested stack with GetAtt ChatToken.Outputs.<name>
    read = set()
    for output in load_template(EXAMPLE)["Outputs"].values():
        logical_id, attribute = output["Value"]["Fn::GetAtt"]
        assert logical_id in _nested_applications()
        prefix, name = attribute.split(".", 1)
        assert prefix == "Outputs"
        read.add(name)
    # When they are compared with template.yaml's outputs
    # Then each exists there, and the API URL, the version and the first-deploy command are among them
    assert read <= set(STACK["Outputs"]), read - set(STACK["Outputs"])
    assert {"ApiUrl", "Version", "StoreApiKeyCommand"} <= read
