"""The photo store's side of a backup (``ops.cards.photo_store``: ``photos/<ab>/<sha256>.jpg``
under the var directory). A restore first writes every photo into a staging folder next to the
store and moves them in only once the database is restored, so a failed restore leaves the
store as it was."""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

from django.utils.translation import gettext as _

from ops.backup.archive import PHOTO
from ops.backup.errors import BackupError
from ops.cards.photo_store import photo_dir


def member_name(sha256: str) -> str:
    return f"photos/{sha256[:2]}/{sha256}.jpg"


def stored() -> Iterator[tuple[str, Path]]:
    """(member name, file) of every stored photo, in name order; temporary ``.part`` files
    of a save in progress are not photos yet."""
    root = photo_dir()
    for path in sorted(root.glob("??/*.jpg")):
        name = member_name(path.stem)
        if PHOTO.match(name) and path.parent.name == path.stem[:2]:
            yield name, path


def files_in_store() -> list[Path]:
    return [p for p in photo_dir().rglob("*") if not p.is_dir()]


class Staging:
    """Photos written aside (``add``), then moved into the empty store (``commit``) or thrown
    away (``discard``)."""

    def __init__(self) -> None:
        self.root = photo_dir().parent / f".photos-restoring-{uuid.uuid4().hex}"
        self.root.mkdir(mode=0o700)
        self.count = 0

    def add(self, name: str, blocks: Iterable[bytes]) -> None:
        match = PHOTO.match(name)
        if not match:
            raise BackupError(_("备份内容的格式不对：未知成员 %(name)s") % {"name": name})
        data = b"".join(blocks)
        if hashlib.sha256(data).hexdigest() != match.group(2):
            raise BackupError(_("校验和不符：照片 %(name)s 的内容与文件名不一致") % {"name": name})
        folder = self.root / match.group(1)
        folder.mkdir(exist_ok=True)
        (folder / f"{match.group(2)}.jpg").write_bytes(data)
        self.count += 1

    def commit(self) -> None:
        target = photo_dir()
        for path in sorted(self.root.glob("??/*.jpg")):
            folder = target / path.parent.name
            folder.mkdir(exist_ok=True)
            os.replace(path, folder / path.name)
        self.discard()

    def discard(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
