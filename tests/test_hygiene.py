"""The tree after the README's test command is the tree before it, and a clone has every document
the README links (issue 19, item 13)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_no_test_writes_into_the_docs_unless_asked():
    """Screenshots go through ``tests.screenshots.path`` (docs only with CAMPUSCARD_SCREENSHOTS=1)."""
    writers = [
        p.name
        for p in (ROOT / "tests").glob("*.py")
        if p.name not in ("screenshots.py", "test_hygiene.py") and "docs/screenshots/" in p.read_text(encoding="utf-8")
    ]
    assert writers == []


def test_every_relative_link_of_the_readme_and_docs_is_in_the_repository():
    missing = []
    for doc in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        for target in re.findall(r"\]\(([^)#\s]+)", doc.read_text(encoding="utf-8")):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (doc.parent / target).exists():
                missing.append(f"{doc.relative_to(ROOT)} → {target}")
    assert missing == []


def test_the_licence_is_a_pep_639_expression():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["license"] == "Apache-2.0"
