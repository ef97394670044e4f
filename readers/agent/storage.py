"""The agent's one way to open its local SQLite files (credential cache, outbox): WAL, and a WAL
kept small — a controller's storage is small (issue 12: the WAL of a busy door filled a 2 MB
volume in 5 s, since SQLite folds it back only every 1,000 pages by default)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

WAL_CHECKPOINT_PAGES = 64  # fold the WAL back into the database every 64 pages (256 KiB)
WAL_LIMIT_BYTES = 512 * 1024  # and cut the WAL file back to this after each fold


def open_db(path: Path, *, synchronous: str = "NORMAL") -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    db.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
    db.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
    return db
