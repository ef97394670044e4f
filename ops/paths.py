"""Where the embedded defaults keep their files (``var/`` unless CAMPUSCARD_VAR_DIR says otherwise)."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def var_dir() -> Path:
    path = Path(os.environ.get("CAMPUSCARD_VAR_DIR") or PROJECT_ROOT / "var")
    path.mkdir(parents=True, exist_ok=True)
    return path
