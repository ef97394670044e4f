"""The campus's sign-on servers, real and of the test's own (issue 16): an OpenLDAP directory
(Debian's slapd, a temporary slapd.conf and database, seeded with ldapadd) and a CAS server
(django-cas-server in a process of its own, ``tests/cas_server``). Each on a free port of
127.0.0.1, stopped by its process id. If slapd is missing or does not start, the test fails:
``scripts/setup.sh --test`` and ``.ci/run`` install it."""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.browser import free_port, stop, wait_http
from tests.conftest import ROOT

SLAPD = "/usr/sbin/slapd"
SUFFIX = "dc=campus,dc=test"
PEOPLE = f"ou=people,{SUFFIX}"
ADMIN_DN = f"cn=admin,{SUFFIX}"
ADMIN_PASSWORD = "directory-admin-pass"  # noqa: S105  (a throwaway directory in a temp dir)
# the product's own directory account: it looks people up, it cannot read passwords
SERVICE_DN = f"cn=campuscard,ou=services,{SUFFIX}"
SERVICE_PASSWORD = "directory-service-pass"  # noqa: S105


@dataclass(frozen=True)
class Person:
    uid: str
    password: str
    name: str
    mail: str


SLAPD_CONF = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {dir}/slapd.pid
database mdb
maxsize 16777216
suffix "{suffix}"
rootdn "{admin}"
rootpw {admin_password}
directory {dir}/data
access to attrs=userPassword by anonymous auth by self read by * none
access to * by dn.exact="{service}" read by self read by * none
"""


def _ldif(people: list[Person]) -> str:
    entries = [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: campus\ndc: campus\n",
        f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n",
        f"dn: ou=services,{SUFFIX}\nobjectClass: organizationalUnit\nou: services\n",
        f"dn: {SERVICE_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n"
        f"cn: campuscard\nuserPassword: {SERVICE_PASSWORD}\n",
    ]
    for p in people:
        entries.append(
            f"dn: uid={p.uid},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: {p.uid}\ncn: {p.name}\n"
            f"sn: {p.name[:1]}\nmail: {p.mail}\nuserPassword: {p.password}\n"
        )
    return "\n".join(entries)


def _answers(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


@contextlib.contextmanager
def directory(tmp: Path, people: list[Person]) -> Iterator[str]:
    """slapd with ``people`` under ou=people; yields its ldap:// URI."""
    ldapadd = shutil.which("ldapadd")
    if not Path(SLAPD).exists() or ldapadd is None:
        raise RuntimeError("slapd or ldapadd is missing: run scripts/setup.sh --test (Debian slapd, ldap-utils)")
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "data").mkdir()
    conf = tmp / "slapd.conf"
    conf.write_text(
        SLAPD_CONF.format(dir=tmp, suffix=SUFFIX, admin=ADMIN_DN, admin_password=ADMIN_PASSWORD, service=SERVICE_DN),
        encoding="utf-8",
    )
    port = free_port()
    uri = f"ldap://127.0.0.1:{port}/"
    log = (tmp / "slapd.log").open("wb")
    # -d 0: stay in the foreground (a child of this test, stopped by its pid)
    proc = subprocess.Popen([SLAPD, "-f", str(conf), "-h", uri, "-d", "0"], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while not _answers(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                raise RuntimeError(f"slapd did not start: {(tmp / 'slapd.log').read_text(errors='replace')[-2000:]}")
            time.sleep(0.05)
        seeded = subprocess.run(
            [ldapadd, "-x", "-H", uri, "-D", ADMIN_DN, "-w", ADMIN_PASSWORD],
            input=_ldif(people).encode(),
            capture_output=True,
            timeout=30,
        )
        if seeded.returncode != 0:
            raise RuntimeError(f"ldapadd failed: {seeded.stderr.decode(errors='replace')}")
        yield uri
    finally:
        stop(proc, signal.SIGTERM)
        log.close()


def ldap_settings(uri: str) -> dict[str, str]:
    """The product's environment for this directory: look people up as its service account."""
    return {
        "LDAP_SERVER_URI": uri,
        "LDAP_BIND_DN": SERVICE_DN,
        "LDAP_BIND_PASSWORD": SERVICE_PASSWORD,
        "LDAP_USER_SEARCH_BASE": PEOPLE,
        "LDAP_USER_FILTER": "(uid=%(user)s)",
    }


@contextlib.contextmanager
def cas_server(tmp: Path, people: list[Person]) -> Iterator[str]:
    """django-cas-server with ``people`` as its users; yields its base URL (``…/cas/``). It
    releases each one's name (``cn``) and e-mail (``mail``), and also its own staff and superuser
    flags — set on everyone here — which must grant nothing in the product."""
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    users = [
        {"username": p.uid, "password": p.password, "first_name": p.name, "email": p.mail}
        | {"is_staff": True, "is_superuser": True}
        for p in people
    ]
    log = (tmp / "cas.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.cas_server", str(tmp), str(port), json.dumps(users)],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        try:
            wait_http(f"http://127.0.0.1:{port}/cas/login", timeout=30, proc=proc)
        except (RuntimeError, TimeoutError) as exc:
            log.flush()
            raise RuntimeError(f"{exc}: {(tmp / 'cas.log').read_text(errors='replace')[-2000:]}") from None
        yield f"http://127.0.0.1:{port}/cas/"
    finally:
        stop(proc, signal.SIGTERM)
        log.close()
