"""Where cardholder photos live: content-addressed files (``<sha256>.jpg``) under the var
directory, so the cardholder row keeps only the digest (``photo_sha256``), the same photo is
stored once, and a backup is a copy of one folder. Written once, never changed in place."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from ops.paths import var_dir

_SHA = re.compile(r"^[0-9a-f]{64}$")


def photo_dir() -> Path:
    path = var_dir() / "photos"
    path.mkdir(parents=True, exist_ok=True)
    return path


def path_for(sha256: str) -> Path | None:
    """The file of a stored photo, or None (bad digest, never stored)."""
    if not _SHA.match(sha256 or ""):
        return None
    path = photo_dir() / sha256[:2] / f"{sha256}.jpg"
    return path if path.is_file() else None


def save(data: bytes) -> str:
    """Store a photo (atomically: a reader never sees half a file); returns its digest."""
    sha = hashlib.sha256(data).hexdigest()
    folder = photo_dir() / sha[:2]
    target = folder / f"{sha}.jpg"
    if target.is_file():
        return sha
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".part")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, target)
    return sha


def discard(sha256: str) -> None:
    """Remove a photo stored for a change that did not happen (``set_holder_photo`` rolled back):
    only ever a file that call itself had just written."""
    path = path_for(sha256)
    if path is not None:
        path.unlink(missing_ok=True)
