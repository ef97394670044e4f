"""Issue 6 acceptance: no response, export or websocket message shown to a role *without a
personal-data grant* contains a cardholder's full citizen ID number or phone number.

A seeded campus (cardholders with known citizen IDs and phones, cards, taps, card actions, fees,
alerts with a repair ticket, import batches whose lists carry citizen IDs, dorm data, audit and
admin history) is crawled as every role with the Django test client: every URL pattern of the
root URLconf (the admin included: every registered model's changelist, add, change, history and
delete pages for seeded rows, and every custom admin URL), the API with the role's token, the
fee-ledger exports (CSV and XLSX), and every same-origin link the fetched pages point to (bounded).
The live desks are then watched as every role that may open them, over the real daphne +
processor + relay stack: the Dash pages, their layouts, and every websocket message while taps,
card actions and alerts flow. Each body is scanned (decoded, HTML- and JSON-unescaped, NFKC,
with separators between digits stripped, inside XLSX/zip members) for the seeded full values.

The scanner has its own positive controls, and the crawl must reach a meaningful number of pages
per role, so the test cannot pass by looking at nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import http.cookiejar
import importlib
import io
import itertools
import json
import re
import signal
import subprocess
import time
import unicodedata
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zipfile
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import Any, Literal

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.db.models import Model
from django.test import Client
from django.urls import NoReverseMatch, URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.demo.operators import DEPARTMENT_OF
from ops.masking import mask_citizen_id, mask_phone, mask_uid
from ops.registry import citizen_id
from ops.registry.choices import HolderKind
from ops.registry.models import AccessEvent, Building, Card, Cardholder, Department, Device
from streams.cards import CardType
from streams.reasons import Decision, Reason
from tests.factories import publish, tap

PASSWORD = "masking-crawl-pass-9"
MAX_FETCHES_PER_ROLE = 800  # pages fetched per role, enumerated URLs and followed links
MAX_QUERY_VARIANTS = 4  # distinct query strings followed per path (filters, popups …)
MAX_PKS_PER_MODEL = 6  # seeded rows whose admin pages are opened per model
CANARY = "13800138000"  # not a seeded phone: the live scan's positive control
LIVE_SECONDS = 6.0  # how long the desks are watched after the events were produced

# Each crawled identity: (label, role, superuser). NIC also as the superuser the demo makes it.
IDENTITIES = [(role.value, role, False) for role in Role] + [("nic-superuser", Role.NIC, True)]


# -- the scanner ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Secret:
    value: str
    kind: str  # "citizen_id" or "phone"
    owner: str  # whose it is (cardholder number, or the list row it came from)


# a run of digits (an ID may end in X), separators allowed between the digits: "138-1234-5678"
_RUN = re.compile(r"[0-9](?:[\s\-\u00a0\u2009\u3000._/·]*[0-9])*[Xx]?")
_DIGITS = re.compile(r"[0-9]+[Xx]?")
_JS_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})|\\x([0-9a-fA-F]{2})")
_FULL_WIDTH = re.compile(r"[\uff10-\uff19\uff38\uff58]")
_PHONE_PREFIXES = ("0086", "86")


class Scanner:
    """Finds seeded full values in a response body. Digit runs are matched whole, so a value
    inside a longer number (a timestamp, a hash) is not a false hit; "+86" before a phone and
    a lowercase "x" at the end of an ID are still hits."""

    def __init__(self, secrets: list[Secret]) -> None:
        self.ids = {s.value.upper(): s for s in secrets if s.kind == "citizen_id"}
        self.phones = {s.value: s for s in secrets if s.kind == "phone"}

    def scan(self, body: bytes) -> set[Secret]:
        found: set[Secret] = set()
        for text in _texts(body):
            for view in _views(text):
                for match in _RUN.finditer(view):
                    run = match.group()
                    parts = _DIGITS.findall(run)
                    # each number as written, and neighbours joined across separators
                    for i in range(len(parts)):
                        for j in range(i + 1, min(len(parts), i + 5) + 1):
                            found.update(self._hits("".join(parts[i:j])))
        return found

    def scan_text(self, text: str) -> set[Secret]:
        return self.scan(text.encode())

    def _hits(self, run: str) -> list[Secret]:
        hits = []
        if run.upper() in self.ids:
            hits.append(self.ids[run.upper()])
        digits = run.rstrip("Xx")
        candidates = [digits] + [digits[len(p) :] for p in _PHONE_PREFIXES if digits.startswith(p)]
        hits.extend(self.phones[c] for c in candidates if c in self.phones)
        return hits


def _texts(body: bytes) -> list[str]:
    """The body as text — and every member of a zip (an XLSX export is one); UTF-16 text is
    also read with its NULs dropped."""
    chunks = [body]
    if body[:4] == b"PK\x03\x04":
        with contextlib.suppress(zipfile.BadZipFile), zipfile.ZipFile(io.BytesIO(body)) as archive:
            chunks += [archive.read(name) for name in archive.namelist()]
    texts = []
    for chunk in chunks:
        texts.append(chunk.decode("utf-8", errors="replace"))
        if b"\x00" in chunk:
            texts.append(chunk.replace(b"\x00", b"").decode("utf-8", errors="replace"))
    return texts


def _views(text: str) -> set[str]:
    """Ways a value can be written in a page: as is, with HTML entities, JS/JSON escapes, URL
    encoding, full-width digits (only the views that can differ are built)."""
    views = {text}
    if "&" in text:
        views.add(html.unescape(text))
    if "\\u" in text or "\\x" in text:
        views |= {_JS_ESCAPE.sub(lambda m: chr(int(m.group(1) or m.group(2), 16)), v) for v in list(views)}
        if "&" in text:
            views |= {html.unescape(v) for v in list(views)}
    if "%" in text or "+" in text:
        views.add(urllib.parse.unquote_plus(text))
    if any(_FULL_WIDTH.search(v) for v in views):
        views |= {unicodedata.normalize("NFKC", v) for v in list(views)}
    return views


def test_the_scanner_flags_unmasked_values_and_passes_masked_ones():
    """Positive control: the scanner the crawl relies on does find leaks, in every spelling."""
    cid = citizen_id.make("440507", date(1990, 1, 1), 123)  # …123X style: ends in a check char
    x_id = next(v for n in range(1, 999) if (v := citizen_id.make("440106", date(2001, 3, 4), n)).endswith("X"))
    phone = "13812345678"
    scanner = Scanner([Secret(cid, "citizen_id", "a"), Secret(x_id, "citizen_id", "b"), Secret(phone, "phone", "a")])
    leaks = {
        f"<td>{cid}</td>": cid,
        f"身份证号：{x_id.lower()}": x_id,
        f"tel:+86{phone}": phone,
        f"<td>{phone[:3]}-{phone[3:7]}-{phone[7:]}</td>": phone,
        f"{phone[:3]} {phone[3:7]} {phone[7:]}": phone,
        f"+86 {phone}": phone,
        json.dumps({"v": cid}, ensure_ascii=True).replace(cid[0], "\\u00" + f"{ord(cid[0]):x}"): cid,
        "".join(f"&#{ord(c)};" for c in cid): cid,
        unicodedata.normalize("NFKC", cid).translate({ord(d): 0xFF10 + int(d) for d in "0123456789"}): cid,
        f"q={urllib.parse.quote(x_id)}&p={phone}": x_id,
    }
    for text, value in leaks.items():
        assert value in {s.value for s in scanner.scan_text(text)}, text
    workbook = io.BytesIO()
    with zipfile.ZipFile(workbook, "w") as archive:
        archive.writestr("xl/sharedStrings.xml", f"<si><t>{x_id}</t></si>")
    assert {s.value for s in scanner.scan(workbook.getvalue())} == {x_id}
    assert {s.value for s in scanner.scan("名单".encode("utf-16") + cid.encode("utf-16-le"))} == {cid}

    clean = (
        f"{mask_citizen_id(cid)} {mask_phone(phone)} {mask_citizen_id(x_id)} ts=1{phone}0 {cid}7 id=9{cid} {phone[:-1]}"
    )
    assert scanner.scan_text(clean) == set()


# -- the seeded campus ------------------------------------------------------------------------

EXTRA_DEPARTMENTS = {
    "NIC": "网络与信息中心",
    "GAO": "总务处",
    "HR": "人事处",
    "AAO": "教务处",
    "FIN": "计划财务处",
    "LIB": "图书馆",
    "SAO": "学生工作处",
    "CS": "计算机工程系",
}


def _id(n: int, region: str = "440507") -> str:
    return citizen_id.make(region, date(1970, 1, 1) + timedelta(days=97 * n % 12_000), n % 997 + 1)


def _phone(n: int) -> str:
    return f"1{'3578'[n % 4]}{(n * 7_919_113 + 20_260_901) % 10**9:09d}"


@dataclass
class World:
    operators: dict[str, Any]  # identity label → user
    nic: Any
    extra_secrets: list[Secret]  # values that are not (yet) on a cardholder
    interesting: dict[type, list[Any]] = field(default_factory=dict)
    uids: list[str] = field(default_factory=list)
    devices: list[str] = field(default_factory=list)

    def secrets(self) -> list[Secret]:
        """Every full citizen ID and phone on record now, plus the ones only in lists/history."""
        out = list(self.extra_secrets)
        for number, cid, phone in Cardholder.objects.values_list("number", "citizen_id", "phone"):
            if cid:
                out.append(Secret(cid, "citizen_id", number))
            if phone:
                out.append(Secret(phone, "phone", number))
        return out


def _csv(rows: list[list[str]]) -> bytes:
    lines = ["学号,姓名,学系,班级,身份证号"] + [",".join(r) for r in rows]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8-sig")


def seed_world(campus) -> World:
    """Personal data everywhere a page, an export or a feed could show it."""
    from django.contrib.admin.models import CHANGE, LogEntry
    from django.contrib.contenttypes.models import ContentType

    from ops.alerts import services as alert_services
    from ops.alerts.choices import AlertKind
    from ops.alerts.models import Alert
    from ops.alerts.services import raise_alert
    from ops.registry.lifecycle import importing, photo_store, services
    from ops.registry.lifecycle.choices import FeeKind
    from ops.registry.lifecycle.models import ImportBatch
    from ops.registry.lifecycle.photos import make_test_photo

    depts = {d.code: d for d in Department.objects.all()}
    for code, name in EXTRA_DEPARTMENTS.items():
        depts[code] = Department.objects.get_or_create(code=code, defaults={"name": name})[0]
    Building.objects.filter(pk=campus.dorm.pk).update(curfew_start=dtime(23, 0), curfew_end=dtime(6, 0))
    dorm2 = Building.objects.create(code="D2", name="2号学生公寓", is_dorm=True)

    operators = {}
    for label, role, superuser in IDENTITIES:
        operators[label] = create_or_update_operator(
            username=f"crawl-{label}",
            password=PASSWORD,
            role=role,
            department=depts[DEPARTMENT_OF[role]],
            is_superuser=superuser,
            buildings=[campus.dorm] if role == Role.DORM_MANAGER else (),
        )
    nic = operators[Role.NIC.value]

    # every holder gets a citizen ID and a phone; a staff member, a contractor with General
    # Affairs' temporary card, and a person without a card besides
    holders = [card.holder for card in campus.cards]
    for i, holder in enumerate(holders):
        holder.citizen_id, holder.phone = _id(i), _phone(i)
        holder.class_name = "安防2501"
    Cardholder.objects.bulk_update(holders, ["citizen_id", "phone", "class_name"])
    now = timezone.now()
    staff = Cardholder.objects.create(
        kind=HolderKind.STAFF,
        number="T000901",
        name="李四海",
        department=depts["HR"],
        citizen_id=_id(101),
        phone=_phone(101),
        title="副教授",
    )
    contractor = Cardholder.objects.create(
        kind=HolderKind.CONTRACTOR,
        number="LCO00901",
        name="王五",
        department=depts["GAO"],
        citizen_id=_id(102, "440106"),
        phone=_phone(102),
    )
    Cardholder.objects.create(
        kind=HolderKind.EXTERNAL,
        number="LEX00901",
        name="赵六",
        department=depts["LIB"],
        citizen_id=_id(103, "430102"),
        phone=_phone(103),
        dorm_building=dorm2,
    )
    staff_card = Card.objects.create(
        uid="5A0F0901", holder=staff, card_type=CardType.STAFF, valid_from=now - timedelta(days=400)
    )
    temp_card = Card.objects.create(
        uid="7E0F0902",
        holder=contractor,
        card_type=CardType.TEMPORARY,
        owner_department=depts["GAO"],
        valid_from=now - timedelta(days=10),
        valid_until=now + timedelta(days=80),
        approving_department=depts["GAO"],
        basis="总务函〔2026〕12号",
    )
    photo_holder = holders[0]
    photo_holder.photo_sha256 = photo_store.save(make_test_photo(seed=3))
    photo_holder.save(update_fields=["photo_sha256"])

    # card actions and fees (audited by the services)
    cards = campus.cards
    old_id = holders[4].citizen_id
    changed_id = _id(104, "445102")
    services.report_loss(card=cards[1], operator=nic, basis="本人挂失")
    services.report_loss(card=cards[2], operator=nic, basis="本人挂失")
    services.report_found(card=Card.objects.get(pk=cards[2].pk), operator=nic, basis="找回")
    services.set_blacklist(card=cards[3], blacklisted=True, operator=nic, basis="保卫处通知")
    reissued = services.replace_card(
        card=cards[4],
        new_uid="0C0FFEE4",
        operator=nic,
        reason=FeeKind.IDENTITY_CHANGE,
        basis="户籍变更",
        window="NIC-1",
        identity_changes={"citizen_id": changed_id},
    )
    services.replace_card(
        card=cards[5], new_uid="0C0FFEE5", operator=nic, reason=FeeKind.LOSS, basis="补卡", window="NIC-2"
    )
    services.extend_validity(card=cards[6], new_until=now + timedelta(days=400), operator=nic, basis="延期毕业名单")
    services.cancel_card(card=cards[7], operator=nic, basis="毕业", holder_status="graduated")
    services.extend_validity(
        card=temp_card,
        new_until=now + timedelta(days=120),
        operator=operators[Role.GENERAL.value],
        basis="总务函〔2026〕13号",
        approving_department=depts["GAO"],  # R-CARD-7: on the owner department's letter
    )

    # taps: gates, the vehicle gate, the dorm door (a late return), an unknown card
    events = []
    for i in range(14):
        device = (campus.gate, campus.vehicle_gate, campus.dorm_door)[i % 3]
        card = cards[i]
        deny = i in (1, 3, 7)
        events.append(
            AccessEvent(
                event_id=uuid.uuid4(),
                device=device,
                card=card,
                card_uid=card.uid,
                holder=card.holder,
                occurred_at=now - timedelta(minutes=3 * i),
                direction="in",
                decision="deny" if deny else "allow",
                reason={1: "lost", 3: "blacklisted", 7: "cancelled"}.get(i, "ok"),
                flags="late_return" if device == campus.dorm_door and i % 2 else "",
                seq=i + 1,
            )
        )
    events.append(
        AccessEvent(
            event_id=uuid.uuid4(),
            device=campus.gate,
            card_uid="DEADBEEF",
            occurred_at=now,
            direction="in",
            decision="deny",
            reason="unknown_card",
            seq=99,
        )
    )
    AccessEvent.objects.bulk_create(events)
    # a running muster of the dorm (issue 17): its pages and its export show names in full — and
    # no ID number or phone
    from ops.muster.services import start_muster

    start_muster(building=campus.dorm, reason="消防演练", by=nic)

    # alerts: a blacklist hit (the security desk's), a device fault worked to a repair ticket
    # charged to a person, a silent dorm door that was acknowledged
    where = {
        "device": campus.gate.code,
        "device_name": campus.gate.name,
        "card": mask_uid(cards[3].uid),
        "holder_id": cards[3].holder_id,
        "holder": "张*3",
        "photo": False,
        "card_type": "student",
        "direction": "in",
    }
    raise_alert(kind=AlertKind.BLACKLIST_HIT, subject=cards[3].uid, at=now, device_id=campus.gate.pk, detail=where)
    raise_alert(
        kind=AlertKind.DEVICE_FAULT,
        subject=campus.vehicle_gate.code,
        at=now,
        device_id=campus.vehicle_gate.pk,
        detail={"fault": "reader"},
    )
    raise_alert(
        kind=AlertKind.UPLOAD_STOPPED, subject=campus.dorm_door.code, at=now, device_id=campus.dorm_door.pk, detail={}
    )
    fault = Alert.objects.get(kind=AlertKind.DEVICE_FAULT)
    silent = Alert.objects.get(kind=AlertKind.UPLOAD_STOPPED)
    alert_services.acknowledge(silent.pk, by=nic, comment="已通知宿管")
    alert_services.open_ticket(
        fault.pk,
        by=nic,
        request=alert_services.TicketRequest(
            cause="human", description="车辆闸杆被撞断", responsible_number=holders[9].number, price="350"
        ),
    )

    # import lists: one previewed (a new student, an update that changes a citizen ID, a row
    # rejected as a duplicate of a valid ID, a bad check digit, an unknown department) and one
    # applied (two new students)
    new_a, new_b, update_id, other_dept = _id(201), _id(202), _id(203), _id(204)
    bad = _id(205)[:17] + ("0" if _id(205)[17] != "0" else "1")
    upd = holders[12]
    academic = operators[Role.ACADEMIC.value]
    preview = importing.preview_import(
        kind="student",
        filename="2026级新生名单.csv",
        operator=academic,
        data=_csv(
            [
                ["2026CS90001", "新生甲", "计算机工程系", "计科2601", new_a],
                [upd.number, upd.name, "保卫处", "安防2502", update_id],
                ["2026CS90002", "新生乙", "计算机工程系", "计科2601", new_a],
                ["2026CS90003", "新生丙", "计算机工程系", "计科2601", bad],
                ["2026CS90004", "新生丁", "天文系", "天文2601", other_dept],
            ]
        ),
    )
    applied = importing.preview_import(
        kind="student",
        filename="补录名单.csv",
        operator=academic,
        data=_csv(
            [
                ["2026CS90011", "新生戊", "计算机工程系", "计科2602", new_b],
                ["2026CS90012", "新生己", "计算机工程系", "计科2602", _id(206)],
            ]
        ),
    )
    importing.apply_import(batch=applied, operator=academic)
    assert preview.plan["update"] and len(preview.plan["rejected"]) >= 3, preview.plan

    # login records (the axes admin pages): a failed and a successful login at the form
    form = Client()
    form.post(settings.LOGIN_URL, {"username": "crawl-nobody", "password": "wrong"})
    form.post(settings.LOGIN_URL, {"username": operators[Role.LEADER.value].username, "password": PASSWORD})

    # the admin's own history of a cardholder (field names only)
    LogEntry.objects.create(
        user=operators["nic-superuser"],
        action_flag=CHANGE,
        content_type=ContentType.objects.get_for_model(Cardholder),
        object_id=str(holders[0].pk),
        object_repr=str(holders[0]),
        change_message=json.dumps([{"changed": {"fields": ["手机号"]}}]),
    )

    extra = [
        Secret(old_id, "citizen_id", f"{holders[4].number} before its identity change"),
        Secret(new_a, "citizen_id", "preview list row 2 (and row 4, rejected as a duplicate)"),
        Secret(update_id, "citizen_id", f"preview list row 3 (update of {upd.number})"),
        Secret(other_dept, "citizen_id", "preview list row 6 (rejected: department)"),
    ]
    reissued.refresh_from_db()
    world = World(operators=operators, nic=nic, extra_secrets=extra)
    world.interesting = {
        Cardholder: [holders[0].pk, holders[4].pk, holders[12].pk, staff.pk, contractor.pk, holders[9].pk],
        Card: [cards[1].pk, cards[3].pk, reissued.pk, temp_card.pk, staff_card.pk],
        ImportBatch: [preview.pk, applied.pk],
    }
    world.uids = [
        cards[0].uid,
        cards[1].uid,
        cards[3].uid,
        cards[4].uid,
        reissued.uid,
        temp_card.uid,
        staff_card.uid,
        "DEADBEEF",
    ]
    world.devices = [campus.gate.code, campus.vehicle_gate.code, campus.dorm_door.code]
    return world


def ensure_no_grants() -> int:
    """The roles crawled hold no personal-data grant: if the grant flow (ops.personal_data) exists,
    every grant is removed. Returns how many grant models there are."""
    try:
        importlib.import_module("ops.personal_data")
    except ImportError:
        return 0
    models = [m for m in apps.get_models() if m.__module__.startswith("ops.personal_data")]
    for model in models:
        model._default_manager.all().delete()
        assert not model._default_manager.exists(), model
    return len(models)


# -- enumerating every URL ----------------------------------------------------------------------


@dataclass
class Route:
    name: str | None  # namespaced ("admin:campus_card_change")
    route: str  # the pattern text, for the report
    params: tuple[str, ...]


def routes(
    resolver: URLResolver | None = None, prefix: str = "", namespace: str = "", params: tuple[str, ...] = ()
) -> list[Route]:
    resolver = resolver or get_resolver()
    out: list[Route] = []
    for entry in resolver.url_patterns:
        names = tuple(entry.pattern.regex.groupindex)
        text = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            ns = ":".join(p for p in (namespace, entry.namespace or "") if p)
            out += routes(entry, text, ns, params + names)
        elif isinstance(entry, URLPattern):
            name = f"{namespace}:{entry.name}" if namespace and entry.name else entry.name
            out.append(Route(name, text, params + names))
    return out


class UrlBook:
    """Concrete URLs for every route, parameters filled from the seeded rows."""

    def __init__(self, world: World) -> None:
        from ops.alerts.models import Alert
        from ops.muster.models import Muster
        from ops.registry.lifecycle.forms import CARD_FORMS

        self.world = world
        self.unfilled: list[str] = []
        self.placeholders: list[str] = []  # rows this test does not seed (e.g. grant requests)
        self.admin_models = {f"admin:{m._meta.app_label}_{m._meta.model_name}_": m for m in admin.site._registry}
        self.app_labels = sorted({m._meta.app_label for m in admin.site._registry})
        holders = world.interesting.get(Cardholder, [])
        self.generic = {
            "alert_id": [str(pk) for pk in Alert.objects.order_by("pk").values_list("pk", flat=True)],
            "muster_id": [str(pk) for pk in Muster.objects.order_by("pk").values_list("pk", flat=True)],
            "holder_id": [str(pk) for pk in holders[:3]],
            "uid": world.uids,
            "code": list(Building.objects.order_by("code").values_list("code", flat=True)),
            "action": list(CARD_FORMS),
            "app_label": self.app_labels,
        }

    def pks(self, model: type[Model]) -> list[str]:
        pks = list(model._default_manager.order_by("pk").values_list("pk", flat=True))
        chosen = list(dict.fromkeys(self.world.interesting.get(model, []) + pks[:2] + pks[-2:]))
        return [str(pk) for pk in chosen[:MAX_PKS_PER_MODEL]]

    def model_of(self, name: str) -> type | None:
        matches = [p for p in self.admin_models if name.startswith(p)]
        return self.admin_models[max(matches, key=len)] if matches else None

    def values(self, route: Route, param: str) -> list[str] | None:
        from django.contrib.contenttypes.models import ContentType

        name = route.name or ""
        model = self.model_of(name) if name.startswith("admin:") else None
        if param in ("object_id", "pk", "id") and model is not None:
            return self.pks(model)
        if param == "pk" and name.startswith("api-import"):
            from ops.registry.lifecycle.models import ImportBatch

            return self.pks(ImportBatch)
        if name == "admin:view_on_site":
            ct = ContentType.objects.get_for_model(Cardholder)
            return {"content_type_id": [str(ct.pk)], "object_id": [str(self.world.interesting[Cardholder][0])]}.get(
                param
            )
        if param == "url":  # the admin's catch-all
            return ["no-such-page/"]
        if param in self.generic:
            return self.generic[param]
        if param in ("pk", "id", "object_id") or param.endswith("_id"):
            self.placeholders.append(f"{name} {route.route} ({param}=1)")
            return ["1"]
        return None

    def queries(self, route: Route) -> list[str]:
        name = route.name or ""
        if "export" in name:
            wide = f"from=2000-01-01&to={(timezone.localdate() + timedelta(days=1)).isoformat()}"
            return ["", f"?format=csv&{wide}", f"?format=xlsx&{wide}", "?format=csv"]
        if "explain" in name:
            return ["", *(f"?uid={u}&device={d}" for u in self.world.uids[:5] for d in self.world.devices[:2])]
        return [""]

    def unnamed(self, route: Route) -> list[str]:
        text = route.route.replace("^", "").replace("$", "").replace("\\", "")
        model = None
        if text.startswith("admin/"):
            by_path = {f"admin/{m._meta.app_label}/{m._meta.model_name}/": m for m in admin.site._registry}
            model = next((m for p, m in by_path.items() if text.startswith(p)), None)
        paths = [text]
        for param in route.params:
            if param in ("object_id", "pk", "id") and model is not None:
                values = self.pks(model)
            else:
                values = self.values(Route("", text, route.params), param) or []
            if not values:
                self.unfilled.append(f"{route.route} (unnamed)")
                return []
            slot = re.compile(rf"<(?:\w+:)?{param}>|\(\?P<{param}>[^)]*\)")
            paths = [slot.sub(v, p, count=1) for p in paths for v in values]
        return ["/" + p for p in paths]

    def urls(self) -> list[str]:
        out: list[str] = []
        for route in routes():
            if route.name is None:  # e.g. the admin's <object_id>/ → change redirects
                out += self.unnamed(route)
                continue
            choices = [self.values(route, p) or [] for p in route.params]
            if any(not c for c in choices):
                self.unfilled.append(f"{route.name} {route.route} (no value or no seeded row)")
                continue
            for combo in itertools.islice(itertools.product(*choices), 40):
                try:
                    path = reverse(route.name, kwargs=dict(zip(route.params, combo, strict=True)))
                except NoReverseMatch:
                    continue
                out += [path + q for q in self.queries(route)]
        return list(dict.fromkeys(out))


# -- the crawl ---------------------------------------------------------------------------------

SKIP = re.compile(r"^/(static|media)/|/logout/$|^/i18n/setlang/")
IGNORED_PARAMETERS = frozenset({"_changelist_filters", "_facets", "o"})
LINK = re.compile(r"""(?:href|action|src)\s*=\s*["']([^"'#][^"']*)["']""", re.I)


@dataclass
class Leak:
    who: str
    url: str
    secret: Secret

    def __str__(self) -> str:
        return f"{self.who} GET {self.url}: full {self.secret.kind} {self.secret.value} (of {self.secret.owner})"


@dataclass
class CrawlResult:
    who: str
    statuses: dict[str, int] = field(default_factory=dict)
    leaks: list[Leak] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)
    unvisited: int = 0  # links still queued when the budget ran out

    @property
    def ok(self) -> list[str]:
        return [u for u, s in self.statuses.items() if s == 200]


def _same_origin(base: str, link: str) -> str | None:
    link = html.unescape(link.strip())
    if link.startswith(("javascript:", "mailto:", "data:", "tel:")):
        return None
    url = urllib.parse.urljoin("http://testserver" + base, link)
    parts = urllib.parse.urlsplit(url)
    if parts.netloc != "testserver" or parts.scheme != "http":
        return None
    # the admin's return-to-list and sorting parameters do not change what a page shows
    query = urllib.parse.urlencode(
        [(k, v) for k, v in urllib.parse.parse_qsl(parts.query, True) if k not in IGNORED_PARAMETERS]
    )
    return parts.path + (f"?{query}" if query else "")


def _body(response) -> bytes:
    if getattr(response, "streaming", False):  # the test client closes it once it is read
        return b"".join(response.streaming_content)
    return response.content


def crawl(who: str, user, seeds: list[str], scanner: Scanner, token: str) -> CrawlResult:
    client = Client(raise_request_exception=False)
    client.force_login(user)
    result = CrawlResult(who)
    queue = deque(u for u in seeds if not SKIP.search(u.split("?")[0]))
    seen: set[str] = set(seeds)
    variants: Counter[str] = Counter()
    while queue and len(result.statuses) < MAX_FETCHES_PER_ROLE:
        url = queue.popleft()
        extra: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Token {token}"} if url.startswith("/api/") else {}
        response = client.get(url, **extra)
        body = _body(response)
        result.statuses[url] = response.status_code
        if response.status_code >= 500:
            result.server_errors.append(f"{who} GET {url}: {response.status_code}")
        result.leaks += [Leak(who, url, s) for s in sorted(scanner.scan(body), key=lambda s: s.value)]
        links = []
        if response.status_code in (301, 302, 303, 307, 308) and response.get("Location"):
            links.append(response["Location"])
        if "html" in response.get("Content-Type", ""):
            links += LINK.findall(body.decode("utf-8", errors="replace"))
        for link in links:
            target = _same_origin(url.split("?")[0], link)
            if target is None or target in seen or SKIP.search(target.split("?")[0]):
                continue
            path = target.split("?")[0]
            if "?" in target:
                if variants[path] >= MAX_QUERY_VARIANTS:
                    continue
                variants[path] += 1
            seen.add(target)
            queue.append(target)
    result.unvisited = len(queue)
    return result


def _token(user) -> str:
    from rest_framework.authtoken.models import Token

    return Token.objects.get_or_create(user=user)[0].key


# Pages each identity must reach at least (so a crawl that reaches nothing fails). NIC's role
# group holds the card/holder/device/ledger permissions; the superuser sees every admin page.
MIN_PAGES = {"nic-superuser": 150, Role.NIC.value: 100}
MIN_PAGES_OTHERS = 10
# … and the pages where personal data is at stake must have been read (200) by NIC's superuser.
MUST_READ: list[str | tuple[str, type[Model] | Literal["import"]]] = [
    "admin:campus_cardholder_changelist",
    ("admin:campus_cardholder_change", Cardholder),
    ("admin:campus_cardholder_history", Cardholder),
    ("admin:campus_card_action", Card),
    ("admin:cards_importbatch_change", "import"),
    ("admin:cards_importbatch_review", "import"),
    ("api-import-detail", "import"),
    "admin:cards_feecharge_export",
    "api-schema",
    "admin:campus_accessevent_changelist",
    "admin:cards_cardaction_changelist",
    "admin:cards_feecharge_changelist",
    "admin:campus_card_explain",
]


def _must_read(world: World) -> list[str]:
    from ops.registry.lifecycle.models import ImportBatch

    urls = []
    for entry in MUST_READ:
        if isinstance(entry, str):
            urls.append(reverse(entry))
        else:
            name, model = entry
            pks = world.interesting[ImportBatch if model == "import" else model]
            extra = ["replace"] if name == "admin:campus_card_action" else []
            urls += [reverse(name, args=[pk, *extra]) for pk in pks[:2]]
    return urls


@pytest.mark.django_db
@pytest.mark.timeout(900)
def test_no_page_api_answer_or_export_shows_a_full_citizen_id_or_phone(campus, redis_client):
    world = seed_world(campus)
    grant_models = ensure_no_grants()
    tokens = {label: _token(user) for label, user in world.operators.items()}
    scanner = Scanner(world.secrets())
    book = UrlBook(world)
    seeds = book.urls()
    assert len(seeds) > 100, seeds  # the whole URLconf, admin included, was enumerated

    # in-crawl positive control: a page that echoes a full ID back (the admin search box) is
    # flagged through the same fetch → decode → scan path (it is the operator's own input,
    # so it is not counted as a leak)
    probe = Client()
    probe.force_login(world.operators["nic-superuser"])
    holder = Cardholder.objects.get(pk=world.interesting[Cardholder][0])
    echoed = _body(probe.get(reverse("admin:campus_cardholder_changelist"), {"q": holder.citizen_id.lower()}))
    assert holder.citizen_id in {s.value for s in scanner.scan(echoed)}

    results: list[CrawlResult] = []
    started = time.monotonic()
    for label, _role, _superuser in IDENTITIES:
        user = world.operators[label]
        results.append(crawl(label, user, seeds, scanner, tokens[label]))
    elapsed = time.monotonic() - started

    summary = {r.who: f"{len(r.ok)} ok / {len(r.statuses)} fetched, {r.unvisited} links left" for r in results}
    print(
        f"\ncrawl ({elapsed:.0f} s, {len(seeds)} enumerated URLs, {len(scanner.ids)} IDs and "
        f"{len(scanner.phones)} phones scanned for, {grant_models} grant models): {summary}"
    )
    if book.unfilled:
        print("routes not crawled (no values for their parameters):", *book.unfilled, sep="\n  ")
    if book.placeholders:
        print("routes crawled with a placeholder id:", *sorted(set(book.placeholders)), sep="\n  ")

    leaks = [leak for r in results for leak in r.leaks]
    by_page: dict[tuple[str, str], list[str]] = defaultdict(list)
    for leak in leaks:
        by_page[(leak.url, leak.secret.kind)].append(leak.who)
    assert not leaks, (
        f"{len(leaks)} unmasked value(s) shown to roles without a grant, on {len(by_page)} "
        f"page/kind pair(s):\n"
        + "\n".join(
            f"  {url} [{kind}] to {', '.join(sorted(set(who)))}" for (url, kind), who in sorted(by_page.items())
        )
        + "\nfirst 40 in detail:\n"
        + "\n".join(f"  {leak}" for leak in leaks[:40])
    )
    for r in results:
        assert len(r.ok) >= MIN_PAGES.get(r.who, MIN_PAGES_OTHERS), (r.who, summary[r.who])
    root = next(r for r in results if r.who == "nic-superuser")
    assert {u: root.statuses.get(u) for u in _must_read(world)} == dict.fromkeys(_must_read(world), 200)
    assert {u: s for u, s in root.statuses.items() if "export" in u} and all(
        s == 200 for u, s in root.statuses.items() if "export" in u
    )
    assert not [e for r in results for e in r.server_errors]


@pytest.mark.django_db
def test_a_holders_admin_page_masks_personal_data_and_editing_still_works(campus):
    """The fix for the holder page: masked values shown, inputs empty, a blank input keeps the
    value on record, a typed one replaces it; a read-only viewer sees the masked values."""
    holder = campus.cards[0].holder
    holder.citizen_id, holder.phone = _id(7), _phone(7)
    holder.save()
    scanner = Scanner(
        [Secret(holder.citizen_id, "citizen_id", holder.number), Secret(holder.phone, "phone", holder.number)]
    )
    url = reverse("admin:campus_cardholder_change", args=[holder.pk])
    for role, superuser in ((Role.NIC, True), (Role.NIC, False), (Role.GENERAL, False)):
        client = Client()
        client.force_login(
            create_or_update_operator(
                username=f"page-{role.value}-{superuser}", password=PASSWORD, role=role, is_superuser=superuser
            )
        )
        page = client.get(url).content
        assert scanner.scan(page) == set(), role
        assert mask_citizen_id(holder.citizen_id).encode() in page
        assert mask_phone(holder.phone).encode() in page

    editor = Client()
    editor.force_login(
        create_or_update_operator(username="page-editor", password=PASSWORD, role=Role.NIC, is_superuser=True)
    )
    form = {
        "kind": holder.kind,
        "number": holder.number,
        "name": holder.name,
        "department": holder.department_id,
        "dorm_building": holder.dorm_building_id or "",
        "citizen_id": "",
        "phone": "",
        "class_name": "新班级",
        "title": "",
        "status": holder.status,
        "study_end": "",
        "photo_sha256": "",
        "cards-TOTAL_FORMS": "1",
        "cards-INITIAL_FORMS": "1",
        "cards-MIN_NUM_FORMS": "0",
        "cards-MAX_NUM_FORMS": "1000",
        "cards-0-id": campus.cards[0].pk,
        "cards-0-holder": holder.pk,
    }
    response = editor.post(url, form)
    assert response.status_code == 302, response.content.decode()[:3000]
    kept = Cardholder.objects.get(pk=holder.pk)
    assert (kept.citizen_id, kept.phone, kept.class_name) == (holder.citizen_id, holder.phone, "新班级")
    assert editor.post(url, {**form, "phone": "13900001111"}).status_code == 302
    assert Cardholder.objects.get(pk=holder.pk).phone == "13900001111"


# -- the live desks -----------------------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _http_get(base: str, path: str, cookie: str) -> tuple[int, bytes]:
    opener = urllib.request.build_opener(_NoRedirect)
    request = urllib.request.Request(base + path, headers={"Cookie": cookie})
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _log_in(base: str, username: str) -> str:
    """Log in at the server's own login form, as a browser does (the server keeps its own secret
    key, so a session made in this process would not be accepted); returns the Cookie header."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    login = f"{base}{settings.LOGIN_URL}"
    form = opener.open(login, timeout=30).read().decode()
    token = re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)[-1]
    data = urllib.parse.urlencode({"csrfmiddlewaretoken": token, "username": username, "password": PASSWORD}).encode()
    with opener.open(urllib.request.Request(login, data=data, headers={"Referer": login}), timeout=30) as response:
        assert urllib.parse.urlsplit(response.url).path != settings.LOGIN_URL, username
    cookies = {c.name: c.value for c in jar}
    assert settings.SESSION_COOKIE_NAME in cookies, username
    return "; ".join(f"{k}={v}" for k, v in cookies.items())


@dataclass
class Desk:
    who: str
    page: str
    cookie: str
    ws_path: str
    deps: list[dict[str, Any]]
    layout: dict[str, Any]
    messages: list[bytes] = field(default_factory=list)
    replies: dict[str, Any] = field(default_factory=dict)  # requestId → callback payload
    before_events: int = 0  # messages received before them

    @property
    def after_events(self) -> bytes:
        return b"\n".join(self.messages[self.before_events :])


def _props(layout: Any) -> dict[str, dict[str, Any]]:
    """id → props of every component in a Dash layout."""
    found: dict[str, dict[str, Any]] = {}
    stack = [layout]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            props = node.get("props")
            if isinstance(props, dict):
                if isinstance(props.get("id"), str):
                    found[props["id"]] = dict(props)
                stack.extend(v for v in props.values() if isinstance(v, list | dict))
    return found


def _outputs(spec: str) -> Any:
    def one(text: str) -> dict[str, str]:
        ident, prop = text.rsplit(".", 1)
        return {"id": ident, "property": prop}

    if spec.startswith(".."):
        return [one(p) for p in spec.strip(".").split("...")]
    return one(spec)


def _request(dep: dict[str, Any], props: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The callback_request payload the renderer sends, with the values the page holds (a
    button clicked once, a slider at its end)."""

    def value(item: dict[str, str]) -> Any:
        held = props.get(item["id"], {})
        if item["property"] == "n_clicks":
            return (held.get("n_clicks") or 0) + 1
        if item["property"] == "value" and "max" in held:
            return held["max"]
        return held.get(item["property"])

    changed = [f"{i['id']}.{i['property']}" for i in dep["inputs"]]
    return {
        "output": dep["output"],
        "outputs": _outputs(dep["output"]),
        "inputs": [{**i, "value": value(i)} for i in dep["inputs"]],
        "state": [{**s, "value": value(s)} for s in dep["state"]],
        "changedPropIds": changed,
        "parsedChangedPropsIds": changed,
    }


def _server_callbacks(desk: Desk) -> list[dict[str, Any]]:
    """The page's callbacks that run on the server when the operator acts (the gate desk's
    replay); the persistent one is started separately, client-side ones never reach the server."""
    return [
        d
        for d in desk.deps
        if not d.get("persistent") and not d.get("clientside_function") and d["inputs"] and "@" not in d["output"]
    ]


async def _watch(desks: list[Desk], base: str, produce, seconds: float) -> None:
    """Every desk's websocket, as the browser opens it: the persistent callback started, then
    the events produced, the replay run, and everything pushed collected for ``seconds``."""
    from bench.fanout import WebSocketClient

    host, port = urllib.parse.urlsplit(base).netloc.split(":")
    renderer = str(uuid.uuid4())

    async def receive(ws: WebSocketClient, desk: Desk) -> None:
        while (payload := await ws.receive()) is not None:
            desk.messages.append(payload)
            with contextlib.suppress(ValueError):
                message = json.loads(payload)
                for m in message if isinstance(message, list) else [message]:
                    if isinstance(m, dict) and m.get("type") == "callback_response":
                        desk.replies[str(m.get("requestId"))] = m.get("payload")

    async def request(ws: WebSocketClient, request_id: str, payload: dict[str, Any]) -> None:
        await ws.send(
            json.dumps(
                {"type": "callback_request", "rendererId": renderer, "requestId": request_id, "payload": payload}
            ).encode()
        )

    sockets: list[WebSocketClient] = []
    tasks = []
    for desk in desks:
        ws = await WebSocketClient.connect(host, int(port), desk.ws_path, origin=base, cookie=desk.cookie)
        sockets.append(ws)
        tasks.append(asyncio.create_task(receive(ws, desk)))
        for n, dep in enumerate(d for d in desk.deps if d.get("persistent")):
            await request(
                ws,
                f"{renderer}-p{n}",
                {"output": dep["output"], "inputs": [], "changedPropIds": [], "parsedChangedPropsIds": []},
            )
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline and not all(any(b"status live" in m for m in d.messages) for d in desks):
        await asyncio.sleep(0.2)
    await asyncio.sleep(1.0)
    for desk in desks:
        desk.before_events = len(desk.messages)
    await asyncio.to_thread(produce)
    await asyncio.sleep(2.0)  # committed and pushed before the replay reads the period
    for round_ in range(2):  # the second round sees what the first put on the page
        for desk, ws in zip(desks, sockets, strict=True):
            props = _props(desk.layout)
            for reply in desk.replies.values():  # {"status": "ok", "data": {"response": …}}
                data = reply.get("data", reply) if isinstance(reply, dict) else None
                response = data.get("response") if isinstance(data, dict) else None
                for ident, values in (response or {}).items():
                    props.setdefault(ident, {}).update(values)
            for n, dep in enumerate(_server_callbacks(desk)):
                await request(ws, f"{renderer}-r{round_}-{n}", _request(dep, props))
        await asyncio.sleep(2.0)
    await asyncio.sleep(seconds)
    for ws in sockets:
        await ws.close()
    await asyncio.sleep(0.3)
    for task in tasks:
        task.cancel()


@pytest.mark.pipeline
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_no_live_desk_pushes_a_full_citizen_id_or_phone(campus, redis_client, stack, subprocess_env):
    """Every live desk, as every role that may open it, over real daphne + processor + relay:
    the page, its layout and every websocket message while taps (a blacklisted card, a replaced
    card, a dorm door), a loss report, an identity-change reissue and a device alert flow, and
    the replay of the past hour runs. Roles that may not open a desk get 403, and that body is
    scanned too."""
    from dashboard.routing import PAGES
    from ops.alerts.choices import AlertKind
    from ops.alerts.services import raise_alert
    from ops.registry.lifecycle import services
    from ops.registry.lifecycle.choices import FeeKind
    from tests.browser import outside_the_browser_loop, stop
    from tests.conftest import campuscard_cmd

    relay = subprocess.Popen(campuscard_cmd("relay"), env=subprocess_env)
    try:
        world = seed_world(campus)
        ensure_no_grants()
        cards = campus.cards
        live_id = _id(301, "360102")
        # positive control for the websocket path: a phone-like number in a gate's name is on
        # the gate desks, so scanning their messages must find it
        Device.objects.filter(pk=campus.gate.pk).update(name=f"东门人行1号闸{CANARY}")
        pages = Scanner(world.secrets())
        leaks: list[Leak] = []
        desks: list[Desk] = []
        refused: Counter[str] = Counter()
        for label, _role, _superuser in IDENTITIES:
            user = world.operators[label]
            cookie = _log_in(stack, user.get_username())
            for prefix, _app, allowed in PAGES:
                # the page, its layout and its callbacks, as the browser first fetches them
                fetched = {
                    path: _http_get(stack, path, cookie)
                    for path in (prefix, prefix + "_dash-layout", prefix + "_dash-dependencies")
                }
                expected = 200 if allowed(user) else 403
                assert {p: c for p, (c, _b) in fetched.items()} == dict.fromkeys(fetched, expected), label
                for path, (_code, body) in fetched.items():
                    leaks += [Leak(label, path, s) for s in pages.scan(body)]
                if expected == 403:
                    refused[prefix] += 1
                    continue
                page = fetched[prefix][1]
                found = re.search(rb'<script id="_dash-config" type="application/json">(.*?)</script>', page, re.S)
                assert found is not None, f"{label}: {prefix} has no Dash config"
                config = json.loads(found.group(1))
                desks.append(
                    Desk(
                        label,
                        prefix,
                        cookie,
                        config["websocket"]["url"],
                        json.loads(fetched[prefix + "_dash-dependencies"][1]),
                        json.loads(fetched[prefix + "_dash-layout"][1]),
                    )
                )

        taps = [
            tap("G-E-01", cards[0].uid, seq=1),
            tap("G-E-01", cards[3].uid, seq=2, decision=Decision.DENY, reason=Reason.BLACKLISTED),
            tap("G-E-01", cards[4].uid, seq=3, decision=Decision.DENY, reason=Reason.CANCELLED),
            tap("V-E-IN", cards[8].uid, seq=1),
            tap("D1-01", cards[9].uid, seq=1),
            tap("D1-01", cards[10].uid, seq=2),
            tap("G-E-01", "DEADBEEF", seq=4, decision=Decision.DENY, reason=Reason.UNKNOWN_CARD),
        ]

        def produce() -> None:
            def work() -> None:
                publish(redis_client, taps)
                services.report_loss(
                    card=Card.objects.get(pk=cards[11].pk), operator=world.nic, basis="本人挂失（值班台）"
                )
                services.replace_card(
                    card=Card.objects.get(pk=cards[13].pk),
                    new_uid="0C0FFE13",
                    operator=world.nic,
                    reason=FeeKind.IDENTITY_CHANGE,
                    basis="户籍变更",
                    identity_changes={"citizen_id": live_id},
                )
                raise_alert(
                    kind=AlertKind.TAMPER,
                    subject=campus.gate.code,
                    at=datetime.now(UTC),
                    device_id=campus.gate.pk,
                    detail={"tamper": "cover opened"},
                )

            outside_the_browser_loop(work)

        started = time.monotonic()
        asyncio.run(_watch(desks, stack, produce, LIVE_SECONDS))
        watched = time.monotonic() - started

        scanner = Scanner(world.secrets())  # now with the ID changed while the desks watched
        assert live_id in scanner.ids
        for desk in desks:
            for message in desk.messages:
                leaks += [Leak(f"{desk.who} (websocket)", desk.page, s) for s in scanner.scan(message)]
        canary = Scanner([Secret(CANARY, "phone", "the canary in a gate's name")])
        for desk in desks:
            if desk.page == "/live/gates/":
                assert any(canary.scan(m) for m in desk.messages), (desk.who, "canary not found")
        summary = {f"{d.who} {d.page}": f"{len(d.messages)} msgs, {sum(map(len, d.messages))} B" for d in desks}
        print(f"\nlive desks watched {watched:.0f} s: {summary}; refused: {dict(refused)}")
        assert not leaks, "unmasked values on the live desks:\n" + "\n".join(f"  {x}" for x in leaks)

        # not vacuous: every desk went live and the events produced reached the desks
        assert {d.page for d in desks} == {p for p, _a, _c in PAGES}
        tap_ids = [str(t.event_id).encode() for t in taps]
        for desk in desks:
            everything, after = b"\n".join(desk.messages), desk.after_events
            assert b"status live" in everything, (desk.who, desk.page)
            assert after, (desk.who, desk.page, "nothing pushed after the events")
            if desk.page == "/live/gates/":
                assert any(i in after for i in tap_ids), (desk.who, "no tap reached the gate desk")
                assert b"replay-feed" in after and b"tap-row" in after.split(b"replay-feed", 1)[1], (
                    desk.who,
                    "the replay did not answer with rows",
                    sorted(desk.replies),
                )
            if desk.page == "/live/dorm/":
                assert tap_ids[4] in after or tap_ids[5] in after, (desk.who, "no dorm tap")
            if desk.page == "/live/cards/":
                assert b"cards-count-lose" in after, (desk.who, "the loss report did not arrive")
    finally:
        stop(relay, signal.SIGTERM)
