"""Screenshots the browser tests take of each desk (issue 19, hygiene): the README's test command
must leave the tree as it found it, so they are written to ``docs/screenshots/`` only on request
(``CAMPUSCARD_SCREENSHOTS=1 ./scripts/test.sh``) and to a scratch folder otherwise — taken either
way, so a page that cannot be drawn still fails the test."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
_SCRATCH = Path(tempfile.gettempdir()) / "campuscard-screenshots"


def path(name: str) -> str:
    """Where the screenshot ``name`` (e.g. ``"nic-desk.png"``) goes this run."""
    folder = DOCS if os.environ.get("CAMPUSCARD_SCREENSHOTS") == "1" else _SCRATCH
    folder.mkdir(parents=True, exist_ok=True)
    return str(folder / name)
