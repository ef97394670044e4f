"""Emergency modes (issue 17, Build 2). Written only by :mod:`ops.registry.emergency.services`
(audited); the relay sends the modes in force to the readers as one signed state
(``streams.emergency``) at each new :class:`EmergencyRevision`."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from ops.registry.calendar.models import DoorGroup
from ops.registry.emergency.choices import LIVE_STATUSES, Kind, Scope, Status
from ops.registry.models import Building


class EmergencyMode(models.Model):
    """A lockdown or unlock-all of the campus, a building or a door group: requested (a
    campus-wide lockdown waits for a second operator's approval), in force, and ended only by a
    person."""

    kind = models.CharField(_("模式"), max_length=12, choices=Kind.choices)
    scope = models.CharField(_("范围"), max_length=10, choices=Scope.choices)
    building = models.ForeignKey(
        Building, verbose_name=_("楼宇"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    group = models.ForeignKey(
        DoorGroup, verbose_name=_("门禁组"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(_("状态"), max_length=10, choices=Status.choices)
    reason = models.CharField(_("原因"), max_length=200)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("发起人"), on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField(_("发起时间"))
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("批准人"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    started_at = models.DateTimeField(_("生效时间"), null=True, blank=True)
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("结束人"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    ended_at = models.DateTimeField(_("结束时间"), null=True, blank=True)
    end_note = models.CharField(_("结束说明"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("紧急模式")
        verbose_name_plural = _("紧急模式")
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.CheckConstraint(
                name="emergency_scope_target",
                condition=(
                    Q(scope=Scope.CAMPUS, building__isnull=True, group__isnull=True)
                    | Q(scope=Scope.BUILDING, building__isnull=False, group__isnull=True)
                    | Q(scope=Scope.GROUP, building__isnull=True, group__isnull=False)
                ),
            ),
            models.CheckConstraint(
                name="emergency_active_started", condition=~Q(status=Status.ACTIVE) | Q(started_at__isnull=False)
            ),
            # one live mode of a kind per place (a second start is refused, not stacked)
            models.UniqueConstraint(
                fields=["kind"], condition=Q(scope=Scope.CAMPUS, status__in=LIVE_STATUSES), name="emergency_one_campus"
            ),
            models.UniqueConstraint(
                fields=["kind", "building"],
                condition=Q(scope=Scope.BUILDING, status__in=LIVE_STATUSES),
                name="emergency_one_per_building",
            ),
            models.UniqueConstraint(
                fields=["kind", "group"],
                condition=Q(scope=Scope.GROUP, status__in=LIVE_STATUSES),
                name="emergency_one_per_group",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · {self.place_label()}"

    def place_label(self) -> str:
        if self.scope == Scope.BUILDING and self.building is not None:
            return self.building.name
        if self.scope == Scope.GROUP and self.group is not None:
            return self.group.name
        return str(Scope.CAMPUS.label)

    @property
    def live(self) -> bool:
        return self.status in LIVE_STATUSES


class EmergencyRevision(models.Model):
    """One row: the revision of the modes in force, raised by every change (the readers take
    only a newer one), and the last revision the relay published."""

    revision = models.PositiveBigIntegerField(default=0)
    published = models.PositiveBigIntegerField(default=0)

    class Meta:
        verbose_name = _("紧急模式版本")
        verbose_name_plural = _("紧急模式版本")

    def __str__(self) -> str:
        return f"{self.revision} ({self.published})"
