"""The real PC/SC stack for tests: pcscd with the vsmartcard-vpcd virtual reader driver, pyscard,
and :class:`tests.card_emulator.EmulatedCard` as the card. Nothing is skipped: a missing piece
is an error that says what to install (``scripts/pcsc_setup.sh``).

pcscd is started here when it is not running (there is no systemd on CI machines) and left
running afterwards, like the Redis and PostgreSQL services the other tests use; its log goes to
``$TMPDIR/campuscard-pcscd.log``. A pcscd that is already running is used as it is.

Use the fixture by importing it into the test module: ``from tests.pcsc import pcsc_reader``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

VPCD_CONF = Path("/etc/reader.conf.d/vpcd")
VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
VPCD_BASE_PORT = 35963  # CHANNELID 0x8C7B in /etc/reader.conf.d/vpcd: slot "00 00"; slot n is +n
VPCD_PREFIX = "Virtual PCD"
PCSCD_LOG = Path(tempfile.gettempdir()) / "campuscard-pcscd.log"
SETUP_HINT = "run scripts/pcsc_setup.sh (as root) to install pcscd, vsmartcard-vpcd and pyscard"

_pcscd: subprocess.Popen[bytes] | None = None  # the pcscd this process started, if any


class PcscStackError(RuntimeError):
    """The PC/SC test stack is missing or broken (an error, never a skip)."""


def _pcscd_binary() -> str:
    found = shutil.which("pcscd") or next(
        (p for p in ("/usr/sbin/pcscd", "/sbin/pcscd") if os.access(p, os.X_OK)), None
    )
    if found is None:
        raise PcscStackError(f"pcscd is not installed: {SETUP_HINT}")
    return found


def _check_installed() -> None:
    _pcscd_binary()
    if not VPCD_CONF.is_file() or not VPCD_DRIVER.exists():
        raise PcscStackError(
            f"the vpcd virtual reader driver is not installed ({VPCD_CONF}, {VPCD_DRIVER}): {SETUP_HINT}"
        )
    try:
        import smartcard.scard  # noqa: F401
    except ImportError as exc:
        raise PcscStackError(f"pyscard is not importable ({exc}): {SETUP_HINT}") from exc


def _service_readers() -> list[str] | None:
    """Reader names, or None when no PC/SC service answers."""
    from readers.sources.base import SourceError
    from readers.sources.pcsc import list_readers

    try:
        return list_readers()
    except SourceError:
        return None


def _start_pcscd() -> None:
    global _pcscd
    log = PCSCD_LOG.open("ab")
    # Foreground mode so the log lands in a file (daemon mode logs to syslog, absent here); its
    # own session so a Ctrl-C of pytest does not take it down.
    _pcscd = subprocess.Popen(
        [_pcscd_binary(), "--foreground"],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()


def vpcd_readers() -> list[str]:
    return sorted(name for name in (_service_readers() or []) if name.startswith(VPCD_PREFIX))


def ensure_pcsc_stack(timeout: float = 15.0) -> list[str]:
    """Make sure pcscd runs with vpcd readers; return their names (sorted: slot 00 first)."""
    _check_installed()
    if _service_readers() is None:
        _start_pcscd()
    deadline = time.monotonic() + timeout
    while True:
        names = _service_readers()
        vpcd = sorted(n for n in names or [] if n.startswith(VPCD_PREFIX))
        if vpcd:
            return vpcd
        if _pcscd is not None and _pcscd.poll() is not None:
            tail = PCSCD_LOG.read_text(errors="replace")[-2000:] if PCSCD_LOG.exists() else ""
            raise PcscStackError(f"pcscd exited with status {_pcscd.returncode}; log {PCSCD_LOG}:\n{tail}")
        if time.monotonic() > deadline:
            if names is None:
                raise PcscStackError(f"pcscd did not come up within {timeout:g} s (log: {PCSCD_LOG})")
            raise PcscStackError(
                f"pcscd runs but has no vpcd reader (readers: {names}); it was probably started before "
                "vsmartcard-vpcd was installed: restart pcscd"
            )
        time.sleep(0.1)


def vpcd_port(reader: str) -> int:
    """The TCP port an emulated card connects to for the vpcd ``reader`` ("Virtual PCD 00 01")."""
    return VPCD_BASE_PORT + int(reader.split()[-1])


def card_present(reader: str) -> bool:
    from smartcard import scard

    hresult, hcontext = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    assert hresult == scard.SCARD_S_SUCCESS, scard.SCardGetErrorMessage(hresult)
    try:
        hresult, states = scard.SCardGetStatusChange(hcontext, 0, [(reader, scard.SCARD_STATE_UNAWARE)])
        assert hresult == scard.SCARD_S_SUCCESS, scard.SCardGetErrorMessage(hresult)
        return bool(states[0][1] & scard.SCARD_STATE_PRESENT)
    finally:
        scard.SCardReleaseContext(hcontext)


def wait_card_state(reader: str, present: bool, timeout: float = 5.0) -> None:
    """Wait until pcscd sees a card on ``reader`` (``present``) or none."""
    deadline = time.monotonic() + timeout
    while card_present(reader) != present:
        if time.monotonic() > deadline:
            raise AssertionError(f"{reader}: card still {'absent' if present else 'present'} after {timeout:g} s")
        time.sleep(0.05)


@pytest.fixture
def pcsc_reader() -> Iterator[str]:
    """The name of the first vpcd reader ("Virtual PCD 00 00"), with no card on it."""
    reader = ensure_pcsc_stack()[0]
    wait_card_state(reader, present=False, timeout=5.0)
    yield reader
