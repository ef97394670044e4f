"""The content-addressed file stores a backup carries besides the database: the photo store
(``ops.registry.lifecycle.photo_store``: ``<ab>/<sha256>.jpg``) and the personal-data requests' written basis
files (``ops.personal_data.basis_store``: ``<ab>/<sha256>.<pdf|jpg|png>``), each a folder under the var
directory, archived as ``<prefix>/<ab>/<sha256>.<ext>``. A restore first writes every file into a
staging folder next to its store and moves them in only once the database is restored, so a
failed restore leaves the stores as they were."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from django.utils.translation import gettext as _

from ops.backup import archive
from ops.backup.errors import BackupError
from ops.personal_data.basis_store import basis_dir
from ops.registry.lifecycle.photo_store import photo_dir


@dataclass(frozen=True)
class FileStore:
    """A folder of files named by their content's SHA-256 (``<root>/<ab>/<sha256>.<ext>``)."""

    prefix: str  # the members' first path part in the archive
    root: Callable[[], Path]  # the store's folder (created if missing)
    pattern: re.Pattern[str]  # valid member names (``archive.PHOTO``, ``archive.BASIS``), which
    # also fix the extensions allowed

    def member_name(self, path: Path) -> str:
        return f"{self.prefix}/{path.parent.name}/{path.name}"

    def stored(self) -> Iterator[tuple[str, Path]]:
        """(member name, file) of every stored file, in name order; temporary ``.part`` files
        of a save in progress (and anything else not named like a stored file) are left out."""
        for path in sorted(self.root().glob("??/*")):
            name = self.member_name(path)
            if self.pattern.match(name) and path.is_file():
                yield name, path

    def files(self) -> list[Path]:
        """Every file in the store, whatever its name (a restore wants none)."""
        return [p for p in self.root().rglob("*") if not p.is_dir()]


PHOTOS = FileStore("photos", photo_dir, archive.PHOTO)
BASIS_FILES = FileStore("personal_data_basis", basis_dir, archive.BASIS)
STORES = (PHOTOS, BASIS_FILES)


def store_of(name: str) -> FileStore | None:
    return next((store for store in STORES if store.pattern.match(name)), None)


class Staging:
    """Files written aside (``add``), one staging folder per store next to it, then moved into
    the empty stores (``commit``) or thrown away (``discard``)."""

    def __init__(self) -> None:
        self._token = uuid.uuid4().hex
        self._folders: dict[str, Path] = {}
        self.counts: dict[str, int] = {store.prefix: 0 for store in STORES}

    def _folder(self, store: FileStore) -> Path:
        if store.prefix not in self._folders:
            folder = store.root().parent / f".{store.prefix}-restoring-{self._token}"
            folder.mkdir(mode=0o700)
            self._folders[store.prefix] = folder
        return self._folders[store.prefix]

    def add(self, name: str, blocks: Iterable[bytes]) -> None:
        store = store_of(name)
        match = store.pattern.match(name) if store else None
        if store is None or match is None:
            raise BackupError(_("备份内容的格式不对：未知成员 %(name)s") % {"name": name})
        data = b"".join(blocks)
        if hashlib.sha256(data).hexdigest() != match.group(2):
            raise BackupError(_("校验和不符：文件 %(name)s 的内容与文件名不一致") % {"name": name})
        folder = self._folder(store) / match.group(1)
        folder.mkdir(exist_ok=True)
        fd = os.open(folder / Path(name).name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:  # 0600, as the stores write them
            handle.write(data)
        self.counts[store.prefix] += 1

    def commit(self) -> None:
        for store in STORES:
            staged = self._folders.get(store.prefix)
            if staged is None:
                continue
            target = store.root()
            for path in sorted(staged.glob("??/*")):
                folder = target / path.parent.name
                folder.mkdir(exist_ok=True)
                os.replace(path, folder / path.name)
        self.discard()

    def discard(self) -> None:
        for folder in self._folders.values():
            shutil.rmtree(folder, ignore_errors=True)
        self._folders.clear()
