"""Runs the AWS SAM transform on a template, offline, inside the pinned SAM CLI environment (.venv-sam).

Usage: .venv-sam/bin/python tools/sam_translate.py TEMPLATE < parameters.json > translated.json

This is the code path of `sam validate`: local CodeUri/ContentUri are replaced with dummy
S3 URIs, then samtranslator (the library CloudFormation's AWS::Serverless transform runs)
expands the template with the given parameter values. Prints the result as JSON.
tools/sam_transform.py calls it; it is not imported by the project's own environment.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main() -> int:
    # Imported here: these modules exist only in the SAM CLI's environment.
    from samcli.commands.validate.lib.exceptions import InvalidSamDocumentException
    from samcli.lib.translate.sam_template_validator import SamTemplateValidator
    from samcli.yamlhelper import yaml_parse
    from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader

    template = yaml_parse(Path(sys.argv[1]).read_text(encoding="utf-8"))
    parameters = json.loads(sys.stdin.read() or "{}")
    # No IAM client: the loader is only asked for managed policies if a function lists Policies.
    validator = SamTemplateValidator(template, ManagedPolicyLoader(None), parameter_overrides=parameters)
    try:
        translated = yaml_parse(validator.get_translated_template_if_valid())
    except InvalidSamDocumentException as error:
        print(f"the SAM transform refused the template: {error}", file=sys.stderr)
        return 2
    json.dump(translated, sys.stdout, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
