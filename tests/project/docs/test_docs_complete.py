"""Nothing is lost between the README and docs/: every make target, parameter and output is named, every link works.

The README is the front door and the depth lives in docs/; these tests hold the two together. A make target with a
`## ` help comment, a parameter or an output of template.yaml that no page names is a fact a reader cannot find, and a
relative link (or its #anchor) that does not resolve is a dead end.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tools.harness.template import load_template

ROOT = Path(__file__).resolve().parents[3]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TEMPLATE = load_template()

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", flags=re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"(?<!!)\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$", flags=re.MULTILINE)


def _make_targets() -> list[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return re.findall(r"^([a-z][a-z0-9-]*):.*## ", text, flags=re.MULTILINE)


def _docs_text() -> str:
    return "\n".join(page.read_text(encoding="utf-8") for page in PAGES)


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its rendered text, lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading renders as its text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML tags render as nothing
    text = text.lower()
    text = re.sub(r"[^\w\- ]", "", text)  # keeps letters, digits, underscores, hyphens and spaces
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every anchor of a page, duplicates numbered the way GitHub numbers them (-1, -2...)."""
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    result = set()
    for match in HEADING.finditer(text):
        slug = github_slug(match.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        result.add(slug if count == 0 else f"{slug}-{count}")
    return result


def relative_links(page: Path) -> list[str]:
    """Link targets of a page outside code: neither absolute URLs nor mail addresses."""
    text = INLINE_CODE.sub("", FENCE.sub("", page.read_text(encoding="utf-8")))
    targets = [match.group(1) for match in LINK.finditer(text)]
    return [target for target in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", target, flags=re.IGNORECASE)]


def test_the_slug_rules_match_github() -> None:
    # Given headings whose anchors GitHub documents by example (code, punctuation, symbols, case)
    # Then the slugs are GitHub's
    assert github_slug("From a clone: `sam deploy`") == "from-a-clone-sam-deploy"
    assert github_slug("`POST /server/token` (trusted back ends)") == "post-servertoken-trusted-back-ends"
    assert github_slug("What stands in the way of ≤ 1.2 (and of ≤ 1.1)") == "what-stands-in-the-way-of--12-and-of--11"
    assert github_slug("An attacker who has...") == "an-attacker-who-has"
    assert github_slug("Lambda's CPU model, and why") == "lambdas-cpu-model-and-why"


def test_duplicate_headings_are_numbered(tmp_path: Path) -> None:
    # Given a page with the same heading twice, one inside a code block
    page = tmp_path / "page.md"
    page.write_text("# Title\n## Setup\n```\n## Not a heading\n```\n### Setup\n", encoding="utf-8")
    # Then the second gets -1 and the fenced one none
    assert anchors(page) == {"title", "setup", "setup-1"}


def test_links_in_code_and_absolute_urls_are_not_checked(tmp_path: Path) -> None:
    # Given a page with a relative link, an absolute one, and links inside code
    page = tmp_path / "page.md"
    page.write_text(
        '[a](docs/a.md#x) [b](https://example.com/b) `[c](c.md)` ![img](i.png)\n```\n[d](d.md)\n```\n[e](e.md "t")\n',
        encoding="utf-8",
    )
    # Then only the relative links outside code are checked
    assert relative_links(page) == ["docs/a.md#x", "e.md"]


def test_there_is_something_to_check() -> None:
    # Given the Makefile, the template and the pages
    # Then each holds what the other tests iterate over (so they cannot pass by finding nothing)
    assert {"demo", "test", "build", "serve", "bench"} <= set(_make_targets())
    assert len(TEMPLATE["Parameters"]) > 20
    assert "ApiUrl" in TEMPLATE["Outputs"]
    assert ROOT / "docs" / "development.md" in PAGES
    assert any(relative_links(page) for page in PAGES)


@pytest.mark.parametrize("target", _make_targets())
def test_every_make_target_is_documented(target: str) -> None:
    # Given a make target with a help comment
    # Then the README or a docs page names it as `make <target>`
    assert re.search(rf"\bmake {re.escape(target)}\b", _docs_text()), f"`make {target}` is named nowhere in the docs"


def _read_by_alarms_or_dashboard() -> set[str]:
    """The parameters the alarms and the dashboard read: the ones an operator tunes from the runbook."""
    alarms = [spec for spec in TEMPLATE["Resources"].values() if spec["Type"] == "AWS::CloudWatch::Alarm"]
    read = set(re.findall(r"\{'Ref': '([A-Za-z]+)'\}", str(alarms)))
    read |= {"EnableDashboard", "ApiClientErrorMinRequests"}  # the dashboard's condition; inside the 4xx expression
    return {name for name in read if name in TEMPLATE["Parameters"]}


TUNED_FROM_THE_RUNBOOK = _read_by_alarms_or_dashboard()


@pytest.mark.parametrize("name", sorted(TEMPLATE["Parameters"]))
def test_every_template_parameter_is_documented(name: str) -> None:
    # Given a parameter of template.yaml
    # Then the template describes it (what the console and `sam deploy --guided` show)
    assert len(TEMPLATE["Parameters"][name].get("Description", "")) > 20, f"parameter {name} has no description"
    # And a table of the README or a docs page has a row for it (deploy.md's parameters, operations.md's alarms)
    row = re.compile(rf"^\|[^|\n]*`{re.escape(name)}`[^|\n]*\|", flags=re.MULTILINE)
    assert row.search(_docs_text()), f"parameter {name} has no row in a table of the docs"
    # And when the alarms or the dashboard read it, the runbook names it, so an operator finds where to tune it
    assert len(TUNED_FROM_THE_RUNBOOK) >= 10
    if name in TUNED_FROM_THE_RUNBOOK:
        runbook = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
        assert f"`{name}`" in runbook, f"the runbook (docs/operations.md) does not name {name}"


@pytest.mark.parametrize("name", sorted(TEMPLATE["Outputs"]))
def test_every_template_output_is_documented(name: str) -> None:
    # Given an output of template.yaml
    # Then the README or a docs page names it
    assert re.search(rf"\b{re.escape(name)}\b", _docs_text()), f"output {name} is named nowhere in the docs"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    # Given every relative link of a page
    broken = []
    for target in relative_links(page):
        path_part, _, anchor = target.partition("#")
        destination = (page.parent / path_part).resolve() if path_part else page
        # Then it names a file or folder of the repository
        if not destination.exists() or ROOT not in [destination, *destination.parents]:
            broken.append(f"{target}: no such file")
        # And its anchor, if any, is a heading of that page
        elif anchor and destination.suffix == ".md" and anchor not in anchors(destination):
            broken.append(f"{target}: no heading with anchor #{anchor}")
        elif anchor and destination.suffix != ".md":
            broken.append(f"{target}: an anchor into a file that has no headings")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)
