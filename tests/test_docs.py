"""Every pointer in the docs and the committed config leads somewhere (issue 11, defect 8: dead links).

Relative Markdown links in README.md and docs/*.md must name an existing file (and, with an anchor,
an existing heading); `docs/....md` paths named in comments of .dlt/config.toml and requirements.txt
must exist, and a quoted section name next to one must be a heading of that page.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
MARKDOWN_FILES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
DOC_PATH = re.compile(r"(docs/[\w.-]+\.md)(?:,\s*\"([^\"]+)\")?")


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _headings(path: Path) -> list[str]:
    in_code = False
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            found.append(line.lstrip("#").strip())
    return found


def _links(path: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.DOTALL)
    return [target for target in LINK.findall(text) if "://" not in target and not target.startswith("mailto:")]


@pytest.mark.parametrize("page", MARKDOWN_FILES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_relative_links_lead_to_existing_files_and_headings(page: Path) -> None:
    broken = []
    for target in _links(page):
        file_part, _, anchor = target.partition("#")
        linked = (page.parent / file_part).resolve() if file_part else page
        if not linked.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and linked.suffix == ".md" and anchor not in {_anchor(h) for h in _headings(linked)}:
            broken.append(f"{target} (no such heading)")
    assert not broken, f"{page.name}: {broken}"


@pytest.mark.parametrize("config", [".dlt/config.toml", "requirements.txt", ".dlt/example.secrets.toml"])
def test_docs_named_in_committed_config_exist(config: str) -> None:
    text = (REPO_ROOT / config).read_text(encoding="utf-8")
    for doc, section in DOC_PATH.findall(text):
        assert (REPO_ROOT / doc).exists(), f"{config} names {doc}, which does not exist"
        if section:
            assert section in _headings(REPO_ROOT / doc), f"{config} names section {section!r} of {doc}"


def test_the_front_page_links_every_reference_page() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    unlinked = [p.name for p in MARKDOWN_FILES[1:] if f"docs/{p.name}" not in readme]
    assert not unlinked, f"README.md does not link {unlinked}"
