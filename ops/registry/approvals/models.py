"""Device requests (issue 18, Build 2; R-DEV-1): written only by
:mod:`ops.registry.approvals.services` (audited)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ops.registry.approvals.choices import RequestKind, RequestStatus
from ops.registry.models import Building, Department, Device


class DeviceRequest(models.Model):
    """A request to install, move or remove a device, filed by its owning department (or NIC)
    and decided by NIC. An install's device exists from the filing on, pending: it holds no key
    and is not trusted until approved. A move names where the device goes; its place changes
    only on approval. A removal withdraws its key on approval."""

    kind = models.CharField(_("类型"), max_length=10, choices=RequestKind.choices)
    status = models.CharField(_("状态"), max_length=10, choices=RequestStatus.choices, default=RequestStatus.PENDING)
    device = models.ForeignKey(
        Device, verbose_name=_("设备"), on_delete=models.PROTECT, related_name="approval_requests"
    )
    department = models.ForeignKey(Department, verbose_name=_("所属部门"), on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(_("申请理由"), max_length=200)
    # the place asked for (install: where it goes in; move: where it goes to; removal: empty)
    building = models.ForeignKey(
        Building, verbose_name=_("楼宇"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    location = models.CharField(_("位置"), max_length=100, blank=True)
    site = models.CharField(_("地点分组"), max_length=40, blank=True)
    address = models.GenericIPAddressField(_("网络地址"), null=True, blank=True)
    before = models.JSONField(_("变更前"), default=dict, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("申请人"), on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField(_("申请时间"), default=timezone.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("审批人"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    decided_at = models.DateTimeField(_("审批时间"), null=True, blank=True)
    decision_note = models.CharField(_("审批意见"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("设备安装/移位/拆除申请")
        verbose_name_plural = _("设备安装/移位/拆除申请")
        ordering = ["-requested_at", "-id"]
        constraints = [
            # one open request per device: a second would decide on a place the first may change
            models.UniqueConstraint(
                fields=["device"], condition=Q(status=RequestStatus.PENDING), name="one_pending_request_per_device"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.device.code} ({self.get_status_display()})"

    @property
    def place_label(self) -> str:
        parts = [self.building.name if self.building else "", self.location, self.site, self.address or ""]
        return " · ".join(p for p in parts if p)
