"""The docs stay honest: every file in ``docs/examples/`` runs and passes its own asserts,
every Python block in the README and the docs pages is part of one of those files, and
every relative link points at something that exists."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
EXAMPLES = sorted((DOCS / "examples").glob("*.py"))
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
#: Pages whose Python blocks are not (yet) all taken from docs/examples: docs/triggers.md
#: shows short illustrative fragments next to its runnable examples.
FRAGMENT_PAGES = {"triggers.md"}

PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.name)
def test_example_runs(example: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(example)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert result.returncode == 0, f"{example.name} failed:\n{result.stdout}"


@pytest.mark.parametrize("page", [p for p in PAGES if p.name not in FRAGMENT_PAGES], ids=page_id)
def test_every_python_block_is_a_tested_example(page: Path) -> None:
    sources = {path.name: path.read_text() for path in EXAMPLES}
    blocks = PYTHON_BLOCK.findall(page.read_text())
    for block in blocks:
        assert any(block.strip() in source for source in sources.values()), (
            f"this block of {page_id(page)} is not part of any docs/examples/*.py file "
            f"(copy it from the example verbatim, or add it to one):\n{block}"
        )


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings of a page."""
    anchors = set()
    in_code = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_relative_links_resolve(page: Path) -> None:
    text = page.read_text()
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue  # http:, https:, mailto:
        path_part, _, anchor = target.partition("#")
        linked = (page.parent / path_part).resolve() if path_part else page
        assert linked.exists(), f"{page_id(page)} links to {target!r}, which does not exist"
        if anchor and linked.suffix == ".md":
            anchors = github_anchors(linked.read_text())
            assert anchor in anchors, (
                f"{page_id(page)} links to {target!r}, but {linked.name} has no heading "
                f"with that anchor; it has {sorted(anchors)}"
            )


def test_readme_starts_with_the_two_commands() -> None:
    """The first code block of the README is what a new user runs first (and what
    /work/shared/tools/fresh-clone-check runs): the demo, then the tests."""
    readme = (ROOT / "README.md").read_text()
    first_block = re.search(r"^```\w*\n(.*?)^```", readme, re.MULTILINE | re.DOTALL)
    assert first_block is not None
    assert first_block[1].split("\n")[:2] == ["make demo", "make test"]
    assert readme.startswith("# ")
