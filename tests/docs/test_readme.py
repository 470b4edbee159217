"""The README is a newcomer's page and ``docs/`` holds the rest: the two commands come first (the test command is
exactly the one ``.ci/run`` runs), the page stays short, every dependency says why it is there, and every link of the
README and of ``docs/`` reaches a file and a heading that exist."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").rglob("*.md"))
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _ci_test_command() -> str:
    lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    return lines[lines.index("# --- the README's test command ---") + 1].strip()


def test_the_two_commands_come_first_and_the_test_command_is_the_ci_one():
    text = README.read_text(encoding="utf-8")
    head = text[:text.index("\n## ")]  # before the first section
    assert "pip install -e . && robustsweep run experiments/quickstart.yaml" in head
    assert _ci_test_command() == 'pip install -e ".[test]" && ruff check . && lint-imports && python -m pytest -q'
    assert _ci_test_command() in head.splitlines()


def test_the_readme_stays_a_first_page():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 180, f"README has {len(lines)} lines: move detail into docs/"
    sections = [line for line in lines if line.startswith("## ")]
    for want in ("login-node workflow", "Reproduce a paper", "Where to read on", "Dependencies and why"):
        assert any(want in s for s in sections), want


def test_every_dependency_says_why_it_is_there():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = [re.split(r"[<>=\[ ;]", d, maxsplit=1)[0] for d in
             project["dependencies"] + [d for ds in project["optional-dependencies"].values() for d in ds]]
    table = README.read_text(encoding="utf-8").split("## Dependencies and why", 1)[1]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    for name in names:
        row = next((r for r in rows if f"`{name}`" in r or f"`{name}==" in r or f"`{name}[" in r), None)
        assert row is not None, f"{name} is not in the README's dependency table"
        assert len(row.rsplit("|", 2)[-2].strip()) > 10, f"{name}: say why it is there"


def test_the_readme_points_to_every_docs_page():
    text = README.read_text(encoding="utf-8")
    for page in (p for p in DOCS if p.parent == ROOT / "docs"):
        assert f"(docs/{page.name})" in text, f"README does not link {page.relative_to(ROOT)}"


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    return {_slug(m.group(1)) for m in re.finditer(r"^#+ (.+)$", text, re.M)}


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_reaches_a_file_and_heading(page):
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue  # an outside address
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        assert dest.exists(), f"{page.name}: link to {target} reaches nothing"
        if anchor and dest.suffix == ".md":
            assert anchor in _anchors(dest), f"{page.name}: no heading #{anchor} in {dest.name}"


def test_the_results_index_lists_every_committed_page():
    index = (ROOT / "docs" / "results" / "README.md").read_text(encoding="utf-8")
    for page in (ROOT / "docs" / "results").glob("*.md"):
        if page.name != "README.md":
            assert f"]({page.name})" in index, f"docs/results/README.md does not list {page.name}"


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda p: str(p.relative_to(ROOT)))
def test_every_named_repository_file_exists(page):
    """A test, module or experiment file the docs name by path exists (tests and modules move; the docs must follow)."""
    text = page.read_text(encoding="utf-8")
    for path in sorted(set(re.findall(r"\b((?:tests|robustsweep|experiments|bench|slurm|analysis)/[\w/.-]+\.(?:py|yaml|sh))",
                                      text))):
        if "NNN" in path:  # a pattern (pNNN.py: one per paper), not a file
            continue
        assert (ROOT / path).exists(), f"{page.relative_to(ROOT)} names {path}, which does not exist"
