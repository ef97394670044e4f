"""The one error a backup or a restore refuses with; its message is for the operator."""

from __future__ import annotations


class BackupError(Exception):
    """A backup or restore that cannot or must not go on (message in the operator's language)."""
