"""A demo campus: departments, 6 dorm buildings, the library, ≥ 60 devices, ≥ 2,000 cardholders
with their cards (a few lost, blacklisted, cancelled, expired — so the live pages show denials).
Deterministic for a given seed, and idempotent: seeding twice changes nothing."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, time, timedelta

from django.db import transaction
from django.utils import timezone

from ops.registry import citizen_id
from ops.registry.choices import HolderKind
from ops.registry.lifecycle import photo_store
from ops.registry.lifecycle.photos import make_test_photo
from ops.registry.models import Building, Card, Cardholder, Department, Device
from streams import signing
from streams.cards import CardStatus, CardType, DeviceKind

ADMIN_DEPARTMENTS = [
    ("NIC", "网络与信息中心"),
    ("SEC", "保卫处"),
    ("SAO", "学生工作处"),
    ("HR", "人事处"),
    ("AAO", "教务处"),
    ("GAO", "总务处"),
    ("FIN", "计划财务处"),
    ("LIB", "图书馆"),
    ("CMO", "校区管理办公室"),
]
ACADEMIC_DEPARTMENTS = [
    ("CS", "计算机工程系"),
    ("ME", "机电工程系"),
    ("EM", "经济管理系"),
    ("FL", "外语系"),
    ("AD", "艺术设计系"),
    ("CE", "化学工程系"),
]
DORMS = [(f"D{i}", f"{i}号学生公寓") for i in range(1, 7)]
GATES = [("E", "东门", 4), ("S", "南门", 3), ("W", "西门", 3), ("N", "北门", 2)]
# Devices numbered 01..count: (code prefix, count, name with {i}, kind, location, in the library building, owner)
COUNTED_DEVICES: list[tuple[str, int, str, DeviceKind, str, bool, str]] = [
    ("L-GATE", 6, "图书馆入口{i}号闸", DeviceKind.LIBRARY_READER, "图书馆", True, "LIB"),
    ("L-DESK", 2, "图书馆借还书台{i}", DeviceKind.LIBRARY_READER, "图书馆", True, "LIB"),
    ("NIC-DESK", 4, "网信中心服务窗口{i}", DeviceKind.DESK_READER, "网信中心", False, "NIC"),
    ("CMO-DESK", 2, "校区管理办公室窗口{i}", DeviceKind.DESK_READER, "行政楼", False, "CMO"),
]

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡"
    "余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯"
    "龙史黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红娥玲芬燕彬鹏浩宇轩博文欣怡"
    "梓涵子豪嘉琪雨婷思远晨阳佳慧俊凯一诺若曦"
)
REGIONS = ["440507", "440106", "440304", "445102", "441302", "440604", "430102", "360102"]


@dataclass(frozen=True)
class SeedReport:
    created: bool
    holders: int
    devices: int


def _name(rng: random.Random) -> str:
    given = "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2))))
    return rng.choice(SURNAMES) + given


@transaction.atomic
def seed_demo_campus(*, holders: int = 2400, seed: int = 20260901) -> SeedReport:
    if Department.objects.filter(code="NIC").exists():
        return SeedReport(False, Cardholder.objects.count(), Device.objects.count())
    rng = random.Random(seed)
    depts = {
        code: Department.objects.create(code=code, name=name) for code, name in ADMIN_DEPARTMENTS + ACADEMIC_DEPARTMENTS
    }
    dorms = [
        Building.objects.create(code=c, name=n, is_dorm=True, curfew_start=time(23, 0), curfew_end=time(6, 0))
        for c, n in DORMS
    ]
    library = Building.objects.create(code="LIB", name="图书馆", is_dorm=False)
    _seed_devices(depts, dorms, library)
    _seed_people(rng, holders, depts, dorms)
    return SeedReport(True, Cardholder.objects.count(), Device.objects.count())


def _seed_devices(depts: dict[str, Department], dorms: list[Building], library: Building) -> None:
    devices: list[Device] = []
    for code, name, lanes in GATES:
        for lane in range(1, lanes + 1):
            devices.append(
                Device(
                    code=f"G-{code}-{lane:02d}",
                    name=f"{name}人行{lane}号闸",
                    kind=DeviceKind.PEDESTRIAN_GATE,
                    location=name,
                    site=name,
                    passback="soft",
                    passback_area="campus",
                    owner=depts["SEC"],
                )
            )
    for code, name in (("E", "东门"), ("N", "北门")):
        for way, label in (("IN", "入"), ("OUT", "出")):
            devices.append(
                Device(
                    code=f"V-{code}-{way}",
                    name=f"{name}车辆{label}口",
                    kind=DeviceKind.VEHICLE_GATE,
                    location=name,
                    owner=depts["SEC"],
                )
            )
    for dorm in dorms:
        for door in range(1, 6):
            devices.append(
                Device(
                    code=f"{dorm.code}-{door:02d}",
                    name=f"{dorm.name}{door}号门",
                    kind=DeviceKind.DORM_DOOR,
                    location=dorm.name,
                    building=dorm,
                    owner=depts["SAO"],
                )
            )
    for prefix, count, label, kind, location, in_library, owner in COUNTED_DEVICES:
        for i in range(1, count + 1):
            devices.append(
                Device(
                    code=f"{prefix}-{i:02d}",
                    name=label.format(i=i),
                    kind=kind,
                    location=location,
                    building=library if in_library else None,
                    owner=depts[owner],
                )
            )
    for device in devices:  # R-DEV-1: every registered device gets its own signing key
        device.key_hex = signing.new_key().hex()
    Device.objects.bulk_create(devices)


def _seed_people(rng: random.Random, total: int, depts: dict[str, Department], dorms: list[Building]) -> None:
    now = timezone.now()
    mix = [
        (HolderKind.STUDENT, 0.79),
        (HolderKind.STAFF, 0.145),
        (HolderKind.CONTRACTOR, 0.025),
        (HolderKind.EXTERNAL, 0.017),
        (HolderKind.SHORT_TERM, 0.013),
        (HolderKind.MERCHANT, 0.01),
    ]
    academic = [depts[c] for c, _ in ACADEMIC_DEPARTMENTS]
    holders: list[Cardholder] = []
    counters: dict[str, int] = {}
    for kind, share in mix:
        for _ in range(max(1, round(total * share))):
            counters[kind] = counters.get(kind, 0) + 1
            n = counters[kind]
            birth = date(1965, 1, 1) + timedelta(days=rng.randrange(0, 14000))
            if kind == HolderKind.STUDENT:
                year = rng.choice((2023, 2024, 2025, 2026))
                birth = date(year - 19, 1, 1) + timedelta(days=rng.randrange(0, 900))
                dept = rng.choice(academic)
                number, building = f"{year}{dept.code}{n:05d}", rng.choice(dorms)
                study_end: date | None = date(year + 4, 7, 1)
            elif kind == HolderKind.STAFF:
                dept = rng.choice(academic + [depts[c] for c, _ in ADMIN_DEPARTMENTS])
                number, building, study_end = f"T{n:06d}", None, None
            else:
                dept = depts["GAO"] if kind == HolderKind.CONTRACTOR else depts["CMO"]
                number, building, study_end = f"L{kind[:2].upper()}{n:05d}", None, None
            holders.append(
                Cardholder(
                    kind=kind,
                    number=number,
                    name=_name(rng),
                    department=dept,
                    dorm_building=building,
                    citizen_id=citizen_id.make(rng.choice(REGIONS), birth, rng.randrange(1, 999)),
                    phone=f"1{rng.choice('3578')}{rng.randrange(10**9):09d}",
                    study_end=study_end,
                    class_name=f"{number[4:6]}{number[2:4]}{rng.randrange(1, 5)}班" if study_end else "",
                )
            )
    Cardholder.objects.bulk_create(holders)
    uids: set[str] = set()
    cards: list[Card] = []
    card_type_of: dict[str, CardType] = {HolderKind.STUDENT: CardType.STUDENT, HolderKind.STAFF: CardType.STAFF}
    # R-CARD-9: the batch print run (批量制卡) is approved on record — students' cards by Academic
    # Affairs from its list, staff cards by HR from theirs; a temporary card by the department
    # that owns it (R-CARD-7)
    approver_of: dict[str, Department] = {CardType.STUDENT: depts["AAO"], CardType.STAFF: depts["HR"]}
    for holder in Cardholder.objects.select_related("department").order_by("id"):
        uid = f"{rng.getrandbits(32):08X}"
        while uid in uids:
            uid = f"{rng.getrandbits(32):08X}"
        uids.add(uid)
        card_type = card_type_of.get(holder.kind, CardType.TEMPORARY)
        valid_from = now - timedelta(days=rng.randrange(30, 900))
        valid_until = None if card_type == CardType.STAFF else now + timedelta(days=rng.randrange(60, 1200))
        roll = rng.random()
        status, blacklisted = CardStatus.ACTIVE, False
        if roll < 0.01:
            status = CardStatus.LOST
        elif roll < 0.015:
            blacklisted = True
        elif roll < 0.02:
            status = CardStatus.CANCELLED
        elif roll < 0.025 and card_type == CardType.TEMPORARY:
            valid_until = now - timedelta(days=rng.randrange(1, 30))  # expired temporary card
        temporary = card_type == CardType.TEMPORARY
        cards.append(
            Card(
                uid=uid,
                holder=holder,
                card_type=card_type,
                status=status,
                blacklisted=blacklisted,
                valid_from=valid_from,
                valid_until=valid_until,
                owner_department=holder.department if temporary else None,
                approving_department=holder.department if temporary else approver_of[card_type],
                basis="申请表（演示数据）" if temporary else "批量制卡名单（演示数据）",
            )
        )
    Card.objects.bulk_create(cards)
    _seed_photos(rng, cards)


def _seed_photos(rng: random.Random, cards: list[Card]) -> None:
    """ID photos (synthetic, R-CARD-8 standard) for every holder whose card the desks will flag
    — blacklisted, lost, cancelled — and one holder in ten besides."""

    holders = []
    for card in cards:
        if card.blacklisted or card.status != CardStatus.ACTIVE or rng.random() < 0.1:
            blue = (rng.randrange(50, 80), rng.randrange(120, 160), rng.randrange(200, 235))
            card.holder.photo_sha256 = photo_store.save(make_test_photo(blue, noise=4, seed=card.holder.pk))
            holders.append(card.holder)
    Cardholder.objects.bulk_update(holders, ["photo_sha256"], batch_size=500)
