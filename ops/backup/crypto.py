"""Authenticated encryption of a byte stream of any length, in chunks, never all in memory.

AES-256-GCM in the STREAM construction (Hoang et al., 2015): the stream is cut into chunks of
``CHUNK`` bytes, each sealed on its own with the nonce ``prefix ‖ counter ‖ last-flag`` and the
file header as associated data. So a chunk cannot be changed, dropped, reordered, moved to
another archive or cut off at the end without its tag failing, and a reader releases only
plaintext whose tag held. Each archive derives its own key from the backup key with HKDF and a
random salt (nonces are never reused across archives); a separate derived value in the header
tells a wrong key from a damaged file before any chunk is read.

File: ``header | (u32 length-and-last-flag, ciphertext+tag)*``, header = ``MAGIC, version,
chunk size, salt, nonce prefix, key check``.
"""

from __future__ import annotations

import hmac
import os
import struct
from typing import BinaryIO, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.utils.translation import gettext as _

from ops.backup.errors import BackupError

MAGIC = b"CCBACKUP"
VERSION = 1
CHUNK = 1 << 20
MAX_CHUNK = 1 << 24
_FIXED = struct.Struct(">BI")  # version, chunk size
_HEADER_LEN = len(MAGIC) + _FIXED.size + 16 + 7 + 16
_LEN = struct.Struct(">I")
_LAST = 1 << 31
_TAG = 16


class WrongKey(BackupError):
    pass


class Damaged(BackupError):
    pass


def _derive(key: bytes, salt: bytes) -> tuple[bytes, bytes]:
    out = HKDF(
        algorithm=hashes.SHA256(), length=48, salt=salt, info=b"campuscard backup v1: aes-256-gcm key, key check"
    ).derive(key)
    return out[:32], out[32:]


def _nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    if counter >= 1 << 32:
        raise BackupError(_("备份过大：超出加密分块数上限"))
    return prefix + struct.pack(">IB", counter, 1 if last else 0)


class Sink(Protocol):
    """Where sealed chunks go: a binary file, or a wrapper around one."""

    def write(self, data: bytes, /) -> int: ...


class EncryptingWriter:
    """``write`` plaintext, ``close`` to seal the last chunk (the file itself stays open)."""

    def __init__(self, raw: Sink, key: bytes, chunk: int = CHUNK) -> None:
        salt, self._prefix = os.urandom(16), os.urandom(7)
        enc_key, check = _derive(key, salt)
        self.header = MAGIC + _FIXED.pack(VERSION, chunk) + salt + self._prefix + check
        raw.write(self.header)
        self._raw, self._aead, self._chunk = raw, AESGCM(enc_key), chunk
        self._buf, self._counter = bytearray(), 0

    def write(self, data: bytes) -> None:
        self._buf += data
        while len(self._buf) > self._chunk:  # keep the rest: the last chunk is sealed by close
            self._seal(bytes(self._buf[: self._chunk]), last=False)
            del self._buf[: self._chunk]

    def close(self) -> None:
        self._seal(bytes(self._buf), last=True)
        self._buf = bytearray()

    def _seal(self, plain: bytes, *, last: bool) -> None:
        sealed = self._aead.encrypt(_nonce(self._prefix, self._counter, last), plain, self.header)
        self._raw.write(_LEN.pack(len(sealed) | (_LAST if last else 0)) + sealed)
        self._counter += 1


class DecryptingReader:
    """``read(n)`` gives plaintext whose chunk's tag held; b"" only after the last chunk, and
    only if nothing follows it. Any failure raises ``WrongKey`` or ``Damaged``."""

    def __init__(self, raw: BinaryIO, key: bytes) -> None:
        header = raw.read(_HEADER_LEN)
        if len(header) < _HEADER_LEN or not header.startswith(MAGIC):
            raise Damaged(_("这不是校园一卡通的备份文件（文件头不对）"))
        version, chunk = _FIXED.unpack_from(header, len(MAGIC))
        if version != VERSION:
            raise Damaged(_("不支持的备份格式版本 %(version)d") % {"version": version})
        if not 0 < chunk <= MAX_CHUNK:
            raise Damaged(_("备份文件已损坏或被篡改（文件头不对）"))
        start = len(MAGIC) + _FIXED.size
        salt, prefix, check = header[start : start + 16], header[start + 16 : start + 23], header[start + 23 :]
        enc_key, expected = _derive(key, salt)
        if not hmac.compare_digest(check, expected):
            raise WrongKey(_("备份密钥不对（或文件头已损坏）：这个备份不是用当前的备份密钥制作的"))
        self.header = header
        self._raw, self._aead, self._prefix, self._max = raw, AESGCM(enc_key), prefix, chunk + _TAG
        self._buf, self._pos, self._counter, self._done = b"", 0, 0, False

    def read(self, n: int) -> bytes:
        while self._pos >= len(self._buf) and not self._done:
            self._buf, self._pos = self._open_next(), 0
        out = self._buf[self._pos : self._pos + n]
        self._pos += len(out)
        return out

    def read_exactly(self, n: int) -> bytes:
        parts, left = [], n
        while left:
            part = self.read(left)
            if not part:
                raise Damaged(_("备份内容不完整（成员数据被截断）"))
            parts.append(part)
            left -= len(part)
        return b"".join(parts)

    def _open_next(self) -> bytes:
        number = self._counter + 1
        head = self._raw.read(_LEN.size)
        if len(head) < _LEN.size:
            raise Damaged(_("备份文件不完整：在第 %(n)d 块处被截断") % {"n": number})
        (word,) = _LEN.unpack(head)
        last, size = bool(word & _LAST), word & ~_LAST
        if not _TAG <= size <= self._max:
            raise Damaged(_("备份文件已损坏或被篡改：第 %(n)d 块校验失败") % {"n": number})
        sealed = self._raw.read(size)
        if len(sealed) < size:
            raise Damaged(_("备份文件不完整：在第 %(n)d 块处被截断") % {"n": number})
        try:
            plain = self._aead.decrypt(_nonce(self._prefix, self._counter, last), sealed, self.header)
        except InvalidTag:
            raise Damaged(_("备份文件已损坏或被篡改：第 %(n)d 块校验失败") % {"n": number}) from None
        self._counter += 1
        if last:
            if self._raw.read(1):
                raise Damaged(_("备份文件已损坏或被篡改：末尾有多余的数据"))
            self._done = True
        return plain
