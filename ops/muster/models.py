"""Musters (紧急清点, issue 17): a roll call of the people inside one building, started in an
emergency or a drill, answered by taps at assembly-point readers. Written only by
``ops.muster.services`` (every step audited); read by ``ops.muster.selectors``."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from ops.muster.choices import REASON_MAX
from ops.registry.models import Building, Cardholder, Device
from streams.cards import DeviceKind


class MusterPoint(models.Model):
    """A desk reader at an assembly point (集合点): during a muster, a tap there marks the person
    safe. Only desk readers: they have no direction, so a tap there never changes where a person
    is by the door rule, and the processor already sends their taps to one live group
    (``names.GROUP_DESK``), which the muster board listens to. Set up by NIC in the admin."""

    device = models.OneToOneField(
        Device,
        verbose_name=_("读卡器"),
        on_delete=models.PROTECT,
        related_name="muster_point",
        limit_choices_to={"kind": DeviceKind.DESK_READER.value},
    )
    place = models.CharField(_("集合点"), max_length=100, help_text=_("如：东操场北侧集合点"))

    class Meta:
        verbose_name = _("集合点读卡器")
        verbose_name_plural = _("集合点读卡器")
        ordering = ["device__code"]

    def __str__(self) -> str:
        return f"{self.place} ({self.device.code})"

    def clean(self) -> None:
        if self.device_id is not None and self.device.kind != DeviceKind.DESK_READER:
            raise ValidationError({"device": _("只有桌面读卡器可以设为集合点")})


class Muster(models.Model):
    """One roll call for one building: started by the security office or NIC with a reason,
    ended by a person. The people to account for are fixed when it starts (``MusterPerson``);
    who is safe is read from the taps at muster points from ``counted_from`` on while it runs,
    and written down when it ends, so an ended muster is a record that no later change (a late
    upload, a muster point removed) rewrites."""

    building = models.ForeignKey(Building, verbose_name=_("楼宇"), on_delete=models.PROTECT, related_name="musters")
    reason = models.CharField(_("清点原因"), max_length=REASON_MAX)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("发起人"), on_delete=models.PROTECT, related_name="+"
    )
    started_at = models.DateTimeField(_("发起时间"))
    # taps at a muster point count from here: a few minutes before the start, since people
    # reach the assembly point before anyone starts the roll call (MUSTER_EARLY_TAP_S)
    counted_from = models.DateTimeField(_("集合点刷卡计入起点"))
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("结束人"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    ended_at = models.DateTimeField(_("结束时间"), null=True, blank=True)
    end_note = models.CharField(_("结束说明"), max_length=REASON_MAX, blank=True)

    class Meta:
        verbose_name = _("紧急清点")
        verbose_name_plural = _("紧急清点")
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["building"], condition=Q(ended_at__isnull=True), name="one_active_muster_per_building"
            ),
            models.CheckConstraint(
                condition=(Q(ended_at__isnull=True) & Q(ended_by__isnull=True))
                | (Q(ended_at__isnull=False) & Q(ended_by__isnull=False) & Q(ended_at__gte=models.F("started_at"))),
                name="muster_ended_by_a_person",
            ),
            models.CheckConstraint(
                condition=Q(counted_from__lte=models.F("started_at")), name="muster_counts_from_start"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.building} {self.started_at:%Y-%m-%d %H:%M}"

    @property
    def active(self) -> bool:
        return self.ended_at is None


class MusterPerson(models.Model):
    """A person the muster must account for: inside the building when it started (their latest
    passage was an entry through one of its doors). ``safe_at`` / ``safe_point`` are written when
    the muster ends; while it runs they are read from the taps."""

    muster = models.ForeignKey(Muster, verbose_name=_("清点"), on_delete=models.CASCADE, related_name="persons")
    holder = models.ForeignKey(Cardholder, verbose_name=_("持卡人"), on_delete=models.PROTECT, related_name="+")
    door = models.ForeignKey(
        Device, verbose_name=_("进楼门"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    entered_at = models.DateTimeField(_("进楼时间"))
    safe_at = models.DateTimeField(_("确认安全时间"), null=True, blank=True)
    safe_point = models.ForeignKey(
        Device, verbose_name=_("集合点"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = _("清点人员")
        verbose_name_plural = _("清点人员")
        constraints = [models.UniqueConstraint(fields=["muster", "holder"], name="muster_person_once")]

    def __str__(self) -> str:
        return f"{self.muster_id}:{self.holder_id}"
