"""The GitHub workflows: pinned actions, least permissions, OIDC for AWS, and their scripts doing what they say.

`make workflows` validates them against GitHub's schema (check-jsonschema) and audits them
(zizmor --offline); these tests hold the project's own rules and run the release's shell steps.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.project import ROOT, project_version

WORKFLOWS = ROOT / ".github" / "workflows"
USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<action>\S+)(?P<comment>.*)$", re.MULTILINE)
SECRETS = re.compile(r"\$\{\{\s*secrets\.")
PINNED = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(/[^@]+)?@[0-9a-f]{40}$")


def _workflow(name: str) -> dict[str, Any]:
    loaded: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    # YAML 1.1 reads the key `on` as true.
    loaded["on"] = loaded.pop(True, loaded.get("on"))
    workflow: dict[str, Any] = loaded
    return workflow


def _steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def _run_step(step: dict[str, Any], environment: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Runs a step's script the way the runner does (bash -e), here."""
    return subprocess.run(
        ["bash", "-e", "-c", step["run"]],
        cwd=cwd,
        env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", str(cwd)), **environment},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_there_are_the_ci_e2e_and_release_workflows() -> None:
    assert sorted(path.name for path in WORKFLOWS.iterdir()) == ["ci.yml", "e2e.yml", "release.yml"]


@pytest.mark.parametrize("name", ["ci.yml", "e2e.yml", "release.yml"])
def test_every_action_is_pinned_to_a_commit_with_its_version_beside_it(name: str) -> None:
    # Given a workflow's text
    text = (WORKFLOWS / name).read_text(encoding="utf-8")
    # When its `uses:` lines are read
    uses = list(USES.finditer(text))
    # Then each names a full commit SHA (a tag can be moved) and says which release that commit is
    assert uses
    for match in uses:
        assert PINNED.fullmatch(match["action"]), match["action"]
        assert re.fullmatch(r"\s*#\s*v\d+(\.\d+)*", match["comment"]), match.group(0)


@pytest.mark.parametrize("name", ["ci.yml", "e2e.yml", "release.yml"])
def test_checkout_keeps_no_credentials(name: str) -> None:
    for step in _steps(_workflow(name)):
        if step.get("uses", "").startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False


def test_ci_runs_make_test_as_parallel_jobs_on_pushes_and_pull_requests_with_read_only_access() -> None:
    # Given ci.yml and the Makefile's `test` target
    workflow = _workflow("ci.yml")
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    side_by_side = re.search(r"^CI_JOBS_SIDE_BY_SIDE := (.*)$", makefile, flags=re.MULTILINE)
    after = re.search(r"^CI_JOBS_AFTER := (.*)$", makefile, flags=re.MULTILINE)
    recipe = re.search(r"^test:[^\n]*\n((?:\t[^\n]*\n)+)", makefile, flags=re.MULTILINE)
    assert side_by_side is not None
    assert after is not None
    assert recipe is not None
    assert "$(MAKE) --no-print-directory $(SIDE_BY_SIDE) $(CI_JOBS_SIDE_BY_SIDE)" in recipe.group(1)
    assert "SIDE_BY_SIDE := $(if $(filter output-sync,$(.FEATURES)),-j2 --output-sync=target,-j1)" in makefile
    assert "$(MAKE) --no-print-directory $(CI_JOBS_AFTER)" in recipe.group(1)
    # When the make command of each job is read
    made = []
    for job in workflow["jobs"].values():
        lines = [line.strip() for step in job["steps"] if "run" in step for line in step["run"].splitlines()]
        (command,) = [line for line in lines if line.startswith("make ")]
        made.append(command.removeprefix("make "))
    # Then the jobs run, side by side, each one target, and together exactly what `make test` runs (.ci/run runs
    # `make test` itself)
    assert sorted(made) == sorted(side_by_side.group(1).split() + after.group(1).split())
    assert all("needs" not in job for job in workflow["jobs"].values())
    # for every push to main and every pull request, able only to read the repository
    assert set(workflow["on"]) == {"push", "pull_request"}
    assert workflow["permissions"] == {"contents": "read"}
    assert all("permissions" not in job for job in workflow["jobs"].values())
    assert not SECRETS.search((WORKFLOWS / "ci.yml").read_text(encoding="utf-8"))
    assert "make test\n" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_release_runs_on_version_tags_with_oidc_and_only_the_permissions_it_needs() -> None:
    # Given release.yml
    workflow = _workflow("release.yml")
    text = (WORKFLOWS / "release.yml").read_text(encoding="utf-8")
    (job,) = workflow["jobs"].values()
    credentials = [
        step for step in job["steps"] if step.get("uses", "").startswith("aws-actions/configure-aws-credentials@")
    ]
    # When its trigger, permissions and AWS step are read
    # Then it runs on v* tags only, the workflow grants nothing, the job may write the release and get an OIDC token,
    # and AWS access is a role assumed with that token: no stored keys
    assert workflow["on"] == {"push": {"tags": ["v*"]}}
    assert workflow["permissions"] == {}
    assert job["permissions"] == {"contents": "write", "id-token": "write"}
    assert len(credentials) == 1
    assert credentials[0]["with"]["role-to-assume"] == "${{ vars.AWS_RELEASE_ROLE_ARN }}"
    assert "aws-access-key-id" not in text
    assert not SECRETS.search(text)


def _release_step(name: str) -> dict[str, Any]:
    (job,) = _workflow("release.yml")["jobs"].values()
    (step,) = [step for step in job["steps"] if step.get("name") == name]
    found: dict[str, Any] = step
    return found


def test_the_release_refuses_a_tag_that_is_not_the_project_s_version(tmp_path: Path) -> None:
    # Given the release's version check and a tag that does not match pyproject.toml
    step = _release_step("The tag is the project's version")
    output = tmp_path / "output"
    # When it runs for that tag
    wrong = _run_step(step, {"GITHUB_REF_NAME": "v0.0.0-wrong", "GITHUB_OUTPUT": str(output)}, ROOT)
    # Then it fails and says why
    assert wrong.returncode != 0
    assert f"is not v{project_version()}" in wrong.stderr


def test_the_release_accepts_the_version_tag_and_hands_the_version_on(tmp_path: Path) -> None:
    # Given the release's version check and the tag v<version>
    step = _release_step("The tag is the project's version")
    output = tmp_path / "output"
    # When it runs for that tag
    right = _run_step(step, {"GITHUB_REF_NAME": f"v{project_version()}", "GITHUB_OUTPUT": str(output)}, ROOT)
    # Then it passes and gives the later steps the version
    assert right.returncode == 0, right.stderr
    assert output.read_text().splitlines() == [f"version={project_version()}"]


def test_the_release_packages_into_the_bucket_and_attaches_packaged_yaml() -> None:
    # Given the release's package and publish steps
    package = _release_step("make package")["run"]
    publish = _release_step("Release with packaged.yaml and the changelog's notes")["run"]
    # When their commands are read
    # Then the code and packaged.yaml go under kustomer-chat-token/<version>/ in the bucket; the release gets the file
    assert 'make package S3_BUCKET="$RELEASE_BUCKET" S3_PREFIX="kustomer-chat-token/$VERSION"' in package
    assert "s3://$RELEASE_BUCKET/kustomer-chat-token/$VERSION/packaged.yaml" in package
    assert "gh release create" in publish
    assert "dist/packaged.yaml" in publish


def test_the_release_notes_are_the_version_s_section_of_the_changelog(tmp_path: Path) -> None:
    # Given the publish step with `gh` replaced by a stand-in that keeps the notes it is given
    step = dict(_release_step("Release with packaged.yaml and the changelog's notes"))
    step["run"] = step["run"].replace("gh release create", "true")
    # When it runs for this version
    result = _run_step(step, {"VERSION": project_version(), "RUNNER_TEMP": str(tmp_path)}, ROOT)
    # Then the notes are that version's changelog section: its text, no other release's heading
    assert result.returncode == 0, result.stderr
    notes = (tmp_path / "notes.md").read_text(encoding="utf-8")
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    section = changelog.split(f"## [{project_version()}]", 1)[1].split("\n## [", 1)[0]
    assert notes.strip()
    assert notes.strip() == section.split("\n", 1)[1].strip()
    assert "## [" not in notes


def test_dependabot_watches_pip_npm_and_the_actions_where_their_files_are() -> None:
    # Given dependabot.yml
    config = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text(encoding="utf-8"))
    updates = {update["package-ecosystem"]: update for update in config["updates"]}
    # When the directories of each ecosystem are read
    # Then pip, npm and GitHub Actions are watched, each in folders that hold its files
    assert set(updates) == {"pip", "npm", "github-actions"}
    for folder in updates["pip"]["directories"]:
        assert list((ROOT / folder.lstrip("/")).glob("*.txt")), folder
    for folder in updates["npm"]["directories"]:
        assert (ROOT / folder.lstrip("/") / "package-lock.json").is_file(), folder
    assert updates["github-actions"]["directory"] == "/"
