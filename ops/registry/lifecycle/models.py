"""Card lifecycle records: the status history, the fee ledger and policy, the outbox that
publishes card changes to readers and live pages, and import batches."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.fields.json import KeyTextTransform
from django.utils.translation import gettext_lazy as _

from ops.registry.lifecycle.choices import (
    Action,
    ChargeStatus,
    FeeKind,
    ImportKind,
    ImportStatus,
    PayChannel,
    Topic,
)


class CardAction(models.Model):
    """One step in a card's life — its status history (R-SEC-1: traceable, provable)."""

    card = models.ForeignKey("campus.Card", verbose_name=_("卡"), on_delete=models.PROTECT, related_name="actions")
    holder = models.ForeignKey(
        "campus.Cardholder", verbose_name=_("持卡人"), on_delete=models.PROTECT, related_name="card_actions"
    )
    action = models.CharField(_("操作"), max_length=20, choices=Action.choices)
    from_status = models.CharField(_("原状态"), max_length=20, blank=True)
    to_status = models.CharField(_("新状态"), max_length=20)
    operator = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("操作员"), null=True, on_delete=models.PROTECT, related_name="+"
    )
    basis = models.CharField(_("依据"), max_length=200, blank=True)
    # R-CARD-9, R-CARD-7: who approved this step (an issuance, a replacement, an extension)
    approved_by_operator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("审批人（在册操作员）"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    approving_department = models.ForeignKey(
        "campus.Department",
        verbose_name=_("审批部门"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    at = models.DateTimeField(_("时间"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("卡务记录")
        verbose_name_plural = _("卡务记录")
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.card_id} {self.action} {self.from_status}→{self.to_status}"


class AccessGrant(models.Model):
    """R-CARD-7: a temporary card opens no dorm and no library "unless the policy grants it" — a
    grant by the card's managing department names one building (its doors) or one door, until a
    date within the card's validity. Made and revoked only by :mod:`ops.registry.lifecycle.services`
    (``grant_access``, ``revoke_grant``), which send it to the readers with the card."""

    card = models.ForeignKey("campus.Card", verbose_name=_("卡"), on_delete=models.PROTECT, related_name="grants")
    building = models.ForeignKey(
        "campus.Building", verbose_name=_("楼宇"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    device = models.ForeignKey(
        "campus.Device", verbose_name=_("设备"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    valid_until = models.DateTimeField(_("授权截止"))
    approving_department = models.ForeignKey(
        "campus.Department", verbose_name=_("审批部门"), on_delete=models.PROTECT, related_name="+"
    )
    basis = models.CharField(_("依据"), max_length=200)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("操作员"), null=True, on_delete=models.PROTECT, related_name="+"
    )
    granted_at = models.DateTimeField(_("授权时间"), auto_now_add=True)
    revoked_at = models.DateTimeField(_("撤销时间"), null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("撤销人"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )

    class Meta:
        verbose_name = _("临时卡通行授权")
        verbose_name_plural = _("临时卡通行授权")
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(building__isnull=True, device__isnull=False)
                | Q(building__isnull=False, device__isnull=True),
                name="grant_names_one_place",
            )
        ]

    def __str__(self) -> str:
        return f"{self.card_id} → {self.place_code}"

    @property
    def place_code(self) -> str:
        """What the readers match: the building's code or the device's id (one of the two is
        set: the constraint)."""
        place = self.building if self.building_id else self.device
        return place.code if place is not None else ""


class FeePolicy(models.Model):
    """R-FEE-2: the replacement fee and the price authority's cap. One row; Finance edits it."""

    replacement_fee = models.DecimalField(
        _("补卡工本费（元）"), max_digits=8, decimal_places=2, default=Decimal("20.00")
    )
    cap = models.DecimalField(_("物价部门核定上限（元）"), max_digits=8, decimal_places=2, default=Decimal("25.00"))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("收费标准")
        verbose_name_plural = _("收费标准")
        constraints = [
            models.CheckConstraint(
                condition=Q(replacement_fee__lte=models.F("cap")) & Q(replacement_fee__gte=0), name="fee_within_cap"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.replacement_fee} / {self.cap}"

    @classmethod
    def current(cls) -> FeePolicy:
        policy, _created = cls.objects.get_or_create(pk=1)
        return policy


class FeeCharge(models.Model):
    """A charge (R-FEE-2: paid by the holder, non-refundable; R-FEE-3: Finance reconciles the
    payments per day and per operator/window). Never deleted; only its status moves, once, from
    owed to paid, waived or void (``services.settle_charge``)."""

    holder = models.ForeignKey(
        "campus.Cardholder", verbose_name=_("持卡人"), on_delete=models.PROTECT, related_name="fees"
    )
    card = models.ForeignKey(
        "campus.Card",
        verbose_name=_("新卡"),
        on_delete=models.PROTECT,
        related_name="fees",
        null=True,
        blank=True,
        help_text=_("设备赔偿无卡"),
    )
    kind = models.CharField(_("收费项目"), max_length=20, choices=FeeKind.choices)
    amount = models.DecimalField(_("金额（元）"), max_digits=8, decimal_places=2)
    operator = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("收费操作员"), null=True, on_delete=models.PROTECT, related_name="+"
    )
    window = models.CharField(_("收费窗口"), max_length=40, blank=True)
    at = models.DateTimeField(_("开单时间"), auto_now_add=True, db_index=True)
    # issue 13, defect 6: owed → paid | waived | void, by the services only (audited)
    status = models.CharField(_("状态"), max_length=10, choices=ChargeStatus.choices, default=ChargeStatus.PAID)
    paid_at = models.DateTimeField(_("缴费时间"), null=True, blank=True, db_index=True)
    settled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("收款/处理人"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    settled_reason = models.CharField(_("减免/作废理由"), max_length=200, blank=True)
    # R-FEE-3 (issue 18, Build 3): every payment carries its channel and a reference that the
    # bank's or the payment platform's statement shows (the service gives one when none is typed)
    channel = models.CharField(_("支付渠道"), max_length=10, choices=PayChannel.choices, blank=True)
    reference = models.CharField(_("支付流水号"), max_length=64, blank=True)

    class Meta:
        verbose_name = _("收费流水")
        verbose_name_plural = _("收费流水")
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0), name="fee_not_negative"),
            models.UniqueConstraint(fields=["reference"], condition=~Q(reference=""), name="fee_reference_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d} {self.kind} {self.amount}"


class OutboxMessage(models.Model):
    """Written in the same transaction as the change it announces; ``campuscard relay``
    publishes it after the commit (credential changes to the readers' stream with a version,
    card actions to the live feed), so nothing is announced that did not happen."""

    topic = models.CharField(max_length=20, choices=Topic.choices)
    payload = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveBigIntegerField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["id"], condition=Q(published_at__isnull=True), name="outbox_unpublished"),
            # a card's credential changes (the revocation tracker on its page, issue 17 Build 6)
            models.Index(
                KeyTextTransform("uid", "payload"), condition=Q(topic="credential"), name="outbox_credential_uid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.topic}"


class ImportBatch(models.Model):
    """A list from HR or Academic Affairs, previewed (what would be created/updated/rejected)
    and — only once the operator accepts the preview — applied exactly as previewed."""

    kind = models.CharField(_("名单类型"), max_length=16, choices=ImportKind.choices)
    filename = models.CharField(_("文件名"), max_length=200)
    sha256 = models.CharField(_("文件摘要"), max_length=64)
    status = models.CharField(_("状态"), max_length=12, choices=ImportStatus.choices, default=ImportStatus.PREVIEWED)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("操作员"), null=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(_("预览时间"), auto_now_add=True)
    applied_at = models.DateTimeField(_("导入时间"), null=True, blank=True)
    rows = models.PositiveIntegerField(_("行数"), default=0)
    plan = models.JSONField(_("导入计划"), default=dict)

    class Meta:
        verbose_name = _("名单导入")
        verbose_name_plural = _("名单导入")
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.filename} ({self.get_status_display()})"


class BankStatement(models.Model):
    """R-FEE-3 (issue 18, Build 3): one day's statement from the bank or the payment platform
    for one channel, as Finance imported it (CSV/XLSX, its columns named at import). The latest
    import of a day and channel is the one reconciled; earlier ones stay as evidence."""

    day = models.DateField(_("对账日期"), db_index=True)
    channel = models.CharField(_("支付渠道"), max_length=10, choices=PayChannel.choices)
    filename = models.CharField(_("文件名"), max_length=200)
    sha256 = models.CharField(_("文件摘要"), max_length=64)
    columns = models.JSONField(_("列名"), default=dict)
    rows = models.PositiveIntegerField(_("行数"), default=0)
    total = models.DecimalField(_("金额合计（元）"), max_digits=12, decimal_places=2, default=Decimal("0.00"))
    imported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("操作员"), null=True, on_delete=models.PROTECT, related_name="+"
    )
    imported_at = models.DateTimeField(_("导入时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("银行对账单")
        verbose_name_plural = _("银行对账单")
        ordering = ["-day", "-id"]

    def __str__(self) -> str:
        return f"{self.day} {self.get_channel_display()} {self.filename}"


class StatementLine(models.Model):
    """One payment on a statement: its reference and amount as the bank shows them."""

    statement = models.ForeignKey(BankStatement, on_delete=models.PROTECT, related_name="lines")
    row = models.PositiveIntegerField(_("行号"))
    reference = models.CharField(_("支付流水号"), max_length=64)
    amount = models.DecimalField(_("金额（元）"), max_digits=10, decimal_places=2)
    paid_at = models.CharField(_("交易时间"), max_length=40, blank=True)

    class Meta:
        verbose_name = _("对账单明细")
        verbose_name_plural = _("对账单明细")
        ordering = ["statement", "row"]

    def __str__(self) -> str:
        return f"{self.reference} {self.amount}"


class ClosedDay(models.Model):
    """A day closed for one fee window, or for every window (``window`` blank): its payments
    are locked — the services refuse them and a database trigger refuses any insert, update or
    delete of a paid charge in ``[starts_at, ends_at)`` (migration 0008). Corrections are new
    entries on an open day. A closing is never undone (the trigger refuses that too)."""

    day = models.DateField(_("结账日期"))
    window = models.CharField(_("收费窗口"), max_length=40, blank=True, help_text=_("空白表示全部窗口"))
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    note = models.CharField(_("结账说明"), max_length=500, blank=True)
    summary = models.JSONField(_("结账时对账结果"), default=dict)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("结账人"), null=True, on_delete=models.PROTECT, related_name="+"
    )
    closed_at = models.DateTimeField(_("结账时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("日结")
        verbose_name_plural = _("日结")
        ordering = ["-day", "window"]
        constraints = [models.UniqueConstraint(fields=["day", "window"], name="closed_day_window_unique")]

    def __str__(self) -> str:
        return f"{self.day} {self.window or '*'}"
