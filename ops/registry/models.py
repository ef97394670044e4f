"""Core records the reader pipeline touches: departments, buildings, cardholders, cards,
devices and access events. Card lifecycle rules live in ``services.py``; invariants are DB
constraints where the database can hold them."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from ops.masking import mask_uid
from ops.registry.choices import (
    CARD_STATUSES,
    CARD_TYPES,
    DECISIONS,
    DEVICE_KINDS,
    DIRECTIONS,
    LIVE_CARD_STATUSES,
    REASONS,
    DeviceApproval,
    DeviceState,
    HolderKind,
    HolderStatus,
)
from ops.registry.citizen_id import validate as validate_citizen_id
from ops.registry.phone import validate as validate_phone
from streams.cards import CardStatus, CardType, DeviceKind


class Department(models.Model):
    """An administrative unit: owns devices (R-DEV-4), approves temporary cards (R-CARD-7)."""

    code = models.CharField(_("代码"), max_length=20, unique=True)
    name = models.CharField(_("名称"), max_length=100)

    class Meta:
        verbose_name = _("部门")
        verbose_name_plural = _("部门")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class Building(models.Model):
    """A dorm building (or other building with doors); dorm managers are scoped to these."""

    code = models.CharField(_("代码"), max_length=20, unique=True)
    name = models.CharField(_("名称"), max_length=100)
    is_dorm = models.BooleanField(_("宿舍楼"), default=False)
    # Dorm curfew: entries inside it are allowed but flagged late_return (R-OPS-4).
    curfew_start = models.TimeField(_("门禁晚归开始"), null=True, blank=True)
    curfew_end = models.TimeField(_("门禁晚归结束"), null=True, blank=True)

    class Meta:
        verbose_name = _("楼宇")
        verbose_name_plural = _("楼宇")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class Cardholder(models.Model):
    """A person entitled to a campus card (R-ROLE-1), with the data HR/Academic Affairs send."""

    kind = models.CharField(_("类别"), max_length=20, choices=HolderKind.choices)
    number = models.CharField(_("学工号"), max_length=32, unique=True)
    name = models.CharField(_("姓名"), max_length=64)
    department = models.ForeignKey(
        Department, verbose_name=_("部门/学系"), on_delete=models.PROTECT, related_name="holders"
    )
    dorm_building = models.ForeignKey(
        Building,
        verbose_name=_("宿舍楼"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="residents",
    )
    # issue 18, Build 7: the room and bed of a dorm assignment from Student Affairs (its list);
    # a database default too, for the bulk inserts (COPY) that name only the columns they fill
    dorm_room = models.CharField(_("房间"), max_length=16, blank=True, default="", db_default="")
    dorm_bed = models.CharField(_("床位"), max_length=8, blank=True, default="", db_default="")
    citizen_id = models.CharField(_("身份证号"), max_length=18, blank=True, validators=[validate_citizen_id])
    phone = models.CharField(_("手机号"), max_length=20, blank=True, validators=[validate_phone])
    class_name = models.CharField(_("班级"), max_length=64, blank=True)  # R-CARD-5
    title = models.CharField(_("职务/职称"), max_length=64, blank=True)  # R-CARD-4
    status = models.CharField(_("在校状态"), max_length=20, choices=HolderStatus.choices, default=HolderStatus.ACTIVE)
    study_end = models.DateField(
        _("预计毕业日期"), null=True, blank=True, help_text=_("学生：预计毕业日期；延期毕业时由教务处名单延长")
    )
    photo_sha256 = models.CharField(_("照片摘要"), max_length=64, blank=True)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("持卡人")
        verbose_name_plural = _("持卡人")
        ordering = ["number"]

    def __str__(self) -> str:
        return f"{self.number} {self.name}"


class Card(models.Model):
    """A physical card bound to a holder. Its UID is what a reader sees."""

    uid = models.CharField(_("卡号(UID)"), max_length=20, unique=True)
    holder = models.ForeignKey(Cardholder, verbose_name=_("持卡人"), on_delete=models.PROTECT, related_name="cards")
    card_type = models.CharField(_("卡类型"), max_length=20, choices=CARD_TYPES.choices)
    status = models.CharField(_("状态"), max_length=20, choices=CARD_STATUSES.choices, default=CardStatus.ACTIVE)
    blacklisted = models.BooleanField(_("黑名单"), default=False)
    issue_no = models.PositiveIntegerField(_("发卡序号"), default=1)
    valid_from = models.DateTimeField(_("生效时间"))
    valid_until = models.DateTimeField(_("失效时间"), null=True, blank=True)
    # R-CARD-9: who approved the issuance — an operator and/or a department on record, set by
    # the card services (never typed as free text) — and on what basis (form number, letter, list).
    approved_by_operator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("审批人（在册操作员）"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="approved_cards",
    )
    # R-CARD-7: a temporary card's approving department is its managing (owner) department.
    approving_department = models.ForeignKey(
        Department,
        verbose_name=_("审批部门"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="approved_cards",
    )
    basis = models.CharField(_("办理依据"), max_length=200, blank=True)
    # Before issue 13 the approver was free text. Text that matched no department or operator
    # on record was kept here by the migration: a legacy note, not an approval on record.
    approval_note = models.CharField(
        _("旧审批记录（迁移前的自由文本，未核实）"), max_length=100, blank=True, editable=False
    )
    # R-CARD-7: a temporary card belongs to the department that approved it.
    owner_department = models.ForeignKey(
        Department,
        verbose_name=_("管理部门"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="temporary_cards",
    )
    replaces = models.OneToOneField(
        "self",
        verbose_name=_("替换的旧卡"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="replaced_by",
    )
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("校园卡")
        verbose_name_plural = _("校园卡")
        constraints = [
            # R-CARD-3: one person, one usable card — held by the database itself.
            models.UniqueConstraint(
                fields=["holder"],
                condition=Q(status__in=LIVE_CARD_STATUSES),
                name="one_live_card_per_holder",
            ),
            models.CheckConstraint(
                condition=Q(valid_until__isnull=True) | Q(valid_until__gt=models.F("valid_from")),
                name="card_validity_ordered",
            ),
            # R-CARD-7: a temporary card has an owning department and an agreed end date.
            models.CheckConstraint(
                condition=~Q(card_type=CardType.TEMPORARY)
                | (Q(owner_department__isnull=False) & Q(valid_until__isnull=False)),
                name="temporary_card_owned_and_bounded",
            ),
            # R-CARD-7 "谁审批，谁管理": a temporary card is approved by the department that owns it.
            models.CheckConstraint(
                condition=~Q(card_type=CardType.TEMPORARY)
                | (Q(approving_department__isnull=False) & Q(approving_department=models.F("owner_department"))),
                name="temporary_card_approved_by_its_owner",
            ),
        ]

    def __str__(self) -> str:
        return self.uid

    def approver_display(self) -> str:
        """Who approved the issuance, for display (R-CARD-9): the department and/or operator on
        record; a legacy free-text note is shown labelled as such."""
        parts = [str(self.approving_department)] if self.approving_department is not None else []
        if self.approved_by_operator is not None:
            parts.append(self.approved_by_operator.get_username())
        if not parts and self.approval_note:
            return str(_("（旧记录，未核实）%(note)s") % {"note": self.approval_note})
        return " / ".join(parts)


class Device(models.Model):
    """A registered reader, gate, door terminal or desk reader (R-DEV-1), owned by a
    department that answers for it (R-DEV-4)."""

    code = models.CharField(_("设备编号"), max_length=32, unique=True)
    name = models.CharField(_("名称"), max_length=100)
    kind = models.CharField(_("类型"), max_length=20, choices=DEVICE_KINDS.choices)
    location = models.CharField(_("位置"), max_length=100)
    building = models.ForeignKey(
        Building,
        verbose_name=_("楼宇"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="devices",
    )
    owner = models.ForeignKey(Department, verbose_name=_("所属部门"), on_delete=models.PROTECT, related_name="devices")
    state = models.CharField(_("状态"), max_length=20, choices=DeviceState.choices, default=DeviceState.UNKNOWN)
    last_seen_at = models.DateTimeField(_("最后心跳"), null=True, blank=True)
    credential_version = models.PositiveBigIntegerField(_("凭证版本"), default=0)
    buffered = models.PositiveIntegerField(_("待上传事件"), default=0)
    # R-DEV-1: NIC registers the device and hands its key over once; messages are signed with it.
    key_hex = models.CharField(_("设备密钥"), max_length=64, blank=True, editable=False)
    # issue 20: after a key is issued again, the old one is still accepted until this time (what
    # the agent signed before it had the new key); empty when the old key was compromised
    previous_key_hex = models.CharField(_("旧设备密钥"), max_length=64, blank=True, editable=False)
    previous_key_until = models.DateTimeField(_("旧密钥有效至"), null=True, blank=True, editable=False)
    boot_epoch = models.PositiveBigIntegerField(_("启动纪元"), default=0)
    last_seq = models.PositiveBigIntegerField(_("最后序号"), default=0)
    heartbeat_s = models.PositiveIntegerField(_("心跳间隔（秒）"), default=10)
    # issue 12, Build 6: the reader agent serving this door — the code of the agent's lead door
    # (its agent_id); empty: the device is its own agent. One Redis ACL user per agent.
    agent = models.CharField(
        _("读卡控制器"),
        max_length=32,
        blank=True,
        help_text=_("服务本设备的读卡控制器（其首个设备的编号）；留空：本设备自成一个控制器"),
    )
    passback = models.CharField(
        _("防潜回"),
        max_length=4,
        default="off",
        choices=[("off", _("关闭")), ("soft", _("软（放行并标记）")), ("hard", _("硬（拒绝）"))],
    )
    passback_area = models.CharField(_("防潜回区域"), max_length=40, blank=True)
    site = models.CharField(
        _("地点分组"), max_length=40, blank=True, help_text=_("同一地点分组内的设备间无需通行时间（克隆卡检测）")
    )
    # R-DEV-1 (issue 18, Build 2): installed, moved or removed only on NIC's approval
    # (ops.registry.approvals); the address it was approved to report from — a heartbeat from
    # another address (or another site) is "moved without approval" (R-DEV-2). Empty: not compared.
    approval = models.CharField(
        _("审批状态"), max_length=10, choices=DeviceApproval.choices, default=DeviceApproval.APPROVED, editable=False
    )
    approved_address = models.GenericIPAddressField(
        _("批准的网络地址"),
        null=True,
        blank=True,
        help_text=_("设备上报心跳应来自的IP地址；留空则不比对"),
    )

    class Meta:
        verbose_name = _("设备")
        verbose_name_plural = _("设备")
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(kind=DeviceKind.DORM_DOOR) | Q(building__isnull=False),
                name="dorm_door_has_building",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class AccessEvent(models.Model):
    """One tap at a reader with the decision the reader made and why. ``event_id`` is the
    reader's own id for it, unique, so a redelivered stream entry never makes a second row."""

    event_id = models.UUIDField(_("事件ID"), unique=True)
    # device and holder have no index of their own: event_device_time and event_holder_time
    # lead with them and serve every look-up by either (a year of taps: each index is paid on
    # every insert — issue 14). No foreign key in the database either (db_constraint=False): a
    # key's trigger queries at every tap's commit were a tenth of the processor's time; the
    # references are kept whole by the tap-commit lock instead (ops.registry.event_refs)
    device = models.ForeignKey(
        Device,
        verbose_name=_("设备"),
        on_delete=models.PROTECT,
        related_name="events",
        db_index=False,
        db_constraint=False,
    )
    card = models.ForeignKey(
        Card,
        verbose_name=_("卡"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="events",
        db_constraint=False,
    )
    card_uid = models.CharField(_("卡号(UID)"), max_length=20)
    holder = models.ForeignKey(
        Cardholder,
        verbose_name=_("持卡人"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="events",
        db_index=False,
        db_constraint=False,
    )
    occurred_at = models.DateTimeField(_("刷卡时间"))
    received_at = models.DateTimeField(_("入库时间"), auto_now_add=True)
    direction = models.CharField(_("方向"), max_length=4, choices=DIRECTIONS.choices)
    decision = models.CharField(_("结果"), max_length=5, choices=DECISIONS.choices)
    reason = models.CharField(_("原因"), max_length=24, choices=REASONS.choices)
    # e.g. "late_return" (a dorm entry inside the curfew), "passback" (soft anti-passback)
    flags = models.CharField(_("标记"), max_length=40, blank=True)
    boot_epoch = models.PositiveBigIntegerField(default=0)
    seq = models.PositiveBigIntegerField(default=0)

    class Meta:
        verbose_name = _("通行记录")
        verbose_name_plural = _("通行记录")
        ordering = ["-occurred_at"]
        indexes = [
            models.Index(fields=["device", "-occurred_at"], name="event_device_time"),
            models.Index(fields=["-occurred_at"], name="event_time"),
            models.Index(fields=["holder", "-occurred_at"], name="event_holder_time"),
            # the UID of a card that was never registered (an unknown or cloned card): only
            # those taps pay for it; a registered card's taps are found by its card index
            models.Index(fields=["card_uid"], name="event_unknown_card_uid", condition=Q(card__isnull=True)),
        ]

    def __str__(self) -> str:
        return f"{self.occurred_at:%Y-%m-%d %H:%M:%S} {mask_uid(self.card_uid)} {self.decision}"  # R-SEC-2
