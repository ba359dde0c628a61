"""The saved Logs Insights queries name only fields and values the logs really hold, and the runbook shows them.

A query on a field nobody logs returns nothing, silently, exactly when someone needs it. The
functions' log lines come from running them through every outcome (tests.support.observed_run);
the API access log's fields are the keys of its format in the translated template.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.support.cloudwatch import BUILT_IN_FIELDS, Deployed, flattened_keys, log_group_writers, query_names
from tests.support.observed_run import Observations
from tools.harness.template import load_template

ROOT = Path(__file__).resolve().parents[3]
RUNBOOK = ROOT / "docs" / "operations.md"
QUERIES = sorted(
    name for name, spec in load_template()["Resources"].items() if spec["Type"] == "AWS::Logs::QueryDefinition"
)


def _access_log_fields(deployed: Deployed) -> tuple[str, set[str]]:
    """(log group, fields) of the API's access log: the keys of its JSON format."""
    (stage,) = deployed.of_type("AWS::ApiGatewayV2::Stage")
    settings = deployed.properties(stage)["AccessLogSettings"]
    group = settings["DestinationArn"].removeprefix("<GetAtt ").removesuffix(".Arn>")
    return group, set(json.loads(settings["Format"]))


def _fields_by_group(deployed: Deployed, observed: Observations) -> dict[str, set[str]]:
    fields = {
        group: {key for line in observed.log_lines(writer) for key in flattened_keys(line)}
        for group, writer in log_group_writers(deployed).items()
    }
    group, access_fields = _access_log_fields(deployed)
    fields[group] = access_fields
    return fields


def _query(deployed: Deployed, name: str) -> tuple[list[str], str]:
    properties = deployed.properties(name)
    groups = [group.removeprefix("<Ref ").removesuffix(">") for group in properties["LogGroupNames"]]
    return groups, properties["QueryString"]


def _unknown_fields(query: str, known: set[str]) -> set[str]:
    return {field for field in query_names(query).fields if field not in known and field not in BUILT_IN_FIELDS}


@pytest.mark.parametrize("name", QUERIES)
def test_every_saved_query_names_only_fields_its_log_groups_hold(
    name: str, deployed: Deployed, observed: Observations
) -> None:
    # Given a saved query and the fields each log group really holds
    groups, query = _query(deployed, name)
    fields = _fields_by_group(deployed, observed)
    for group in groups:
        # Then every field it names is in every group it runs on
        assert group in fields, f"{name} runs on {group}, which neither a function nor the API writes to"
        assert _unknown_fields(query, fields[group]) == set()


@pytest.mark.parametrize("name", QUERIES)
def test_every_value_a_saved_query_looks_for_is_one_the_functions_log(
    name: str, deployed: Deployed, observed: Observations
) -> None:
    # Given a saved query on a function's log group and the values that function really logged
    groups, query = _query(deployed, name)
    writers = log_group_writers(deployed)
    names = query_names(query)
    for group in (group for group in groups if group in writers):
        lines = observed.log_lines(writers[group])
        # Then each literal it compares a field with was logged in that field,
        for field, values in names.values.items():
            logged = {str(line[field]) for line in lines if field in line}
            assert values <= logged, f"{name}: {field} is never {sorted(values - logged)}"
        # and each pattern it matches a field with matches a logged value
        for field, patterns in names.patterns.items():
            for pattern in patterns:
                assert any(re.search(pattern, str(line.get(field, ""))) for line in lines), f"{name}: {pattern}"
    assert names.values or names.patterns


def test_the_field_check_catches_a_field_nobody_logs(deployed: Deployed, observed: Observations) -> None:
    # Given the mint's fields and a query with a misspelt one (and an alias, a function, a built-in field)
    fields = _fields_by_group(deployed, observed)["MintTokenLogGroup"]
    query = 'fields @timestamp, corelation_id | filter message = "x" | stats count(*) as n by bin(5m), route'
    # Then the misspelt field, and only it, is reported
    assert _unknown_fields(query, fields) == {"corelation_id"}


def _lines(query: str) -> str:
    """The query with each line stripped: a block indented under a list item is the same query."""
    return "\n".join(line.strip() for line in query.strip().splitlines())


def _runbook_queries() -> list[str]:
    blocks = re.findall(r"```logsinsights\n(.*?)```", RUNBOOK.read_text(encoding="utf-8"), flags=re.DOTALL)
    return [_lines(block) for block in blocks]


def test_the_runbook_shows_every_saved_query_word_for_word_and_saves_every_query_it_shows(deployed: Deployed) -> None:
    # Given the saved queries and the Logs Insights blocks of docs/operations.md
    saved = sorted(_lines(deployed.properties(name)["QueryString"]) for name in QUERIES)
    shown = sorted(_runbook_queries())
    # Then they are the same queries: one click away in the console, and readable in the runbook
    assert shown == saved


def test_every_saved_query_has_a_name_in_the_stacks_folder(deployed: Deployed) -> None:
    names = [deployed.properties(name)["Name"] for name in QUERIES]
    assert len(set(names)) == len(names) >= 8
    assert all(name.startswith("kustomer-chat-token/") for name in names)
