"""The archive's contents, inside the encrypted stream (``ops.backup.crypto``): named members,
each streamed in length-prefixed blocks, and last a ``manifest.json`` holding every member's
SHA-256 and size, the migration state, the time and the source database vendor.

Members: ``photos/<ab>/<sha256>.jpg`` (the photo store) and
``personal_data_basis/<ab>/<sha256>.<pdf|jpg|png>`` (the personal-data requests' written basis
files), both content-addressed (the name is the content's digest), then one database member
(``database/postgresql.pgdump``, a ``pg_dump`` custom-format archive, or
``database/sqlite3.db``, an SQLite file), then the manifest. An archive made before basis files
were archived simply has none of them.
``verify`` reads a whole archive once, checking every tag, every digest and the layout, and
returns the manifest — before a restore touches anything.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.utils.translation import gettext as _

from ops.backup.crypto import Damaged, DecryptingReader, EncryptingWriter

FORMAT = b"campuscard-archive/1\n"
MANIFEST = "manifest.json"
DATABASE = {"postgresql": "database/postgresql.pgdump", "sqlite": "database/sqlite3.db"}


def content_addressed(prefix: str, extensions: tuple[str, ...]) -> re.Pattern[str]:
    """The member names of a content-addressed store: ``<prefix>/<ab>/<sha256>.<ext>``, where
    ``<ab>`` is the digest's first two digits; group 1 is the folder, group 2 the digest."""
    endings = "|".join(re.escape(ext) for ext in extensions)
    return re.compile(rf"^{re.escape(prefix)}/([0-9a-f]{{2}})/(\1[0-9a-f]{{62}})\.(?:{endings})$")


PHOTO = content_addressed("photos", ("jpg",))
BASIS = content_addressed("personal_data_basis", ("pdf", "jpg", "png"))
CONTENT_ADDRESSED = (PHOTO, BASIS)

_NAME = struct.Struct(">H")
_BLOCK = struct.Struct(">I")
_MAX_MANIFEST = 64 << 20


def content_digest(name: str) -> str | None:
    """The digest a content-addressed member's name promises, or None (not such a member)."""
    for pattern in CONTENT_ADDRESSED:
        match = pattern.match(name)
        if match:
            return match.group(2)
    return None


@dataclass(frozen=True)
class Member:
    sha256: str
    size: int


class ArchiveWriter:
    """Members in order, then ``finish(manifest)`` — which adds the digests and seals."""

    def __init__(self, sink: EncryptingWriter) -> None:
        self._sink = sink
        self.members: dict[str, Member] = {}
        sink.write(FORMAT)

    def add(self, name: str, blocks: Iterable[bytes]) -> Member:
        if name in self.members or name == MANIFEST:
            raise ValueError(f"duplicate member {name}")
        encoded = name.encode()
        self._sink.write(_NAME.pack(len(encoded)) + encoded)
        digest, size = hashlib.sha256(), 0
        for block in blocks:
            if block:
                digest.update(block)
                size += len(block)
                self._sink.write(_BLOCK.pack(len(block)))
                self._sink.write(block)
        self._sink.write(_BLOCK.pack(0))
        self.members[name] = Member(digest.hexdigest(), size)
        return self.members[name]

    def finish(self, manifest: dict[str, Any]) -> None:
        manifest = {**manifest, "members": {n: {"sha256": m.sha256, "size": m.size} for n, m in self.members.items()}}
        data = json.dumps(manifest, ensure_ascii=False, sort_keys=True, indent=1).encode()
        encoded = MANIFEST.encode()
        self._sink.write(
            _NAME.pack(len(encoded)) + encoded + _BLOCK.pack(len(data)) + data + _BLOCK.pack(0) + _NAME.pack(0)
        )
        self._sink.close()


def members(reader: DecryptingReader) -> Iterator[tuple[str, Iterator[bytes]]]:
    """(name, its blocks) in archive order; a member's blocks must be consumed (or are
    skipped) before the next member is read."""
    if reader.read_exactly(len(FORMAT)) != FORMAT:
        raise Damaged(_("备份内容的格式不对"))
    while True:
        (length,) = _NAME.unpack(reader.read_exactly(_NAME.size))
        if length == 0:
            if reader.read(1):
                raise Damaged(_("备份内容的格式不对：结束标记之后还有数据"))
            return
        try:
            name = reader.read_exactly(length).decode()
        except UnicodeDecodeError:
            raise Damaged(_("备份内容的格式不对：成员名不是 UTF-8")) from None
        blocks = _blocks(reader)
        yield name, blocks
        for _rest in blocks:  # drain what the consumer left
            pass


def _blocks(reader: DecryptingReader) -> Iterator[bytes]:
    while True:
        (size,) = _BLOCK.unpack(reader.read_exactly(_BLOCK.size))
        if size == 0:
            return
        yield reader.read_exactly(size)


@dataclass(frozen=True)
class Verified:
    manifest: dict[str, Any]
    header: bytes  # the archive's header: a second pass must read the very same archive


def verify(path: Path, key: bytes) -> Verified:
    """Read the whole archive once: every chunk's tag, every member's digest against the
    manifest, the layout. Nothing is written anywhere."""
    seen: dict[str, Member] = {}
    manifest: dict[str, Any] | None = None
    with path.open("rb") as raw:
        reader = DecryptingReader(raw, key)
        for name, blocks in members(reader):
            if manifest is not None:
                raise Damaged(_("备份内容的格式不对：清单之后还有成员"))
            if name in seen:
                raise Damaged(_("备份内容的格式不对：成员 %(name)s 重复") % {"name": name})
            if name == MANIFEST:
                manifest = _load_manifest(blocks)
                continue
            digest, size = hashlib.sha256(), 0
            for block in blocks:
                digest.update(block)
                size += len(block)
            seen[name] = Member(digest.hexdigest(), size)
    if manifest is None:
        raise Damaged(_("备份内容不完整：没有清单"))
    _check_layout(manifest, seen)
    return Verified(manifest, reader.header)


def _load_manifest(blocks: Iterator[bytes]) -> dict[str, Any]:
    data = bytearray()
    for block in blocks:
        data += block
        if len(data) > _MAX_MANIFEST:
            raise Damaged(_("备份清单过大"))
    try:
        manifest = json.loads(data)
    except ValueError:
        raise Damaged(_("备份清单无法解析")) from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("members"), dict):
        raise Damaged(_("备份清单无法解析"))
    return manifest


def _check_layout(manifest: dict[str, Any], seen: dict[str, Member]) -> None:
    listed = manifest["members"]
    for name in sorted(set(listed) | set(seen)):
        entry, member = listed.get(name), seen.get(name)
        if (
            entry is None
            or member is None
            or not isinstance(entry, dict)
            or (entry.get("sha256"), entry.get("size")) != (member.sha256, member.size)
        ):
            raise Damaged(_("校验和不符：成员 %(name)s 与清单不一致") % {"name": name})
        digest = content_digest(name)
        if digest is not None and digest != member.sha256:
            raise Damaged(_("校验和不符：文件 %(name)s 的内容与文件名不一致") % {"name": name})
    vendor = manifest.get("vendor")
    databases = [n for n in seen if n.startswith("database/")]
    if vendor not in DATABASE or databases != [DATABASE[vendor]]:
        raise Damaged(_("备份内容的格式不对：数据库成员与清单中的数据库类型不符"))
    strays = [n for n in seen if n != DATABASE[vendor] and content_digest(n) is None]
    if strays:
        raise Damaged(_("备份内容的格式不对：未知成员 %(name)s") % {"name": strays[0]})
