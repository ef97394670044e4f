"""A request to look at cardholders' personal data (R-SEC-2) and, once reviewed, its grant."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ops.personal_data.choices import RequestStatus


class PersonalDataRequest(models.Model):
    """Filed by an operator with a purpose, the persons it covers and the written basis (a
    scanned letter or form). The responsible leader approves it, NIC reviews it; the review
    opens a grant until ``valid_until``. The grant is active only while the status is
    ``reviewed`` and the clock is before ``valid_until`` — expiry needs no job; the status
    is set to ``expired`` lazily, the first time somebody looks after the end."""

    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("申请人"),
        on_delete=models.PROTECT,
        related_name="personal_data_requests",
    )
    purpose = models.TextField(_("查询目的"), max_length=500)
    cardholders = models.ManyToManyField(
        "campus.Cardholder", verbose_name=_("查询对象"), related_name="personal_data_requests"
    )
    # The written basis, stored content-addressed under the var directory (ops.personal_data.basis_store)
    basis_name = models.CharField(_("书面依据文件名"), max_length=200)
    basis_sha256 = models.CharField(_("书面依据摘要"), max_length=64)
    basis_type = models.CharField(_("书面依据类型"), max_length=40)
    basis_size = models.PositiveIntegerField(_("书面依据大小（字节）"))
    status = models.CharField(
        _("状态"), max_length=20, choices=RequestStatus.choices, default=RequestStatus.FILED, db_index=True
    )
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("审批领导"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    approved_at = models.DateTimeField(_("审批时间"), null=True, blank=True)
    approver_comment = models.CharField(_("审批意见"), max_length=200, blank=True)
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("复核人"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    reviewed_at = models.DateTimeField(_("复核时间"), null=True, blank=True)
    reviewer_comment = models.CharField(_("复核意见"), max_length=200, blank=True)
    valid_until = models.DateTimeField(_("授权截止"), null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("撤销人"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    revoked_at = models.DateTimeField(_("撤销时间"), null=True, blank=True)
    revoke_reason = models.CharField(_("撤销原因"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("申请时间"), default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("个人数据查询申请")
        verbose_name_plural = _("个人数据查询申请")
        ordering = ["-id"]
        constraints = [
            # a grant always has its end: no open-ended access to personal data
            models.CheckConstraint(
                condition=~models.Q(status="reviewed") | models.Q(valid_until__isnull=False),
                name="personal_data_grant_has_end",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.get_status_display()}"

    @property
    def basis_ref(self) -> str:
        """What audit records cite as their basis."""
        return f"personal_data_request:{self.pk}"

    def is_active(self, now=None) -> bool:
        now = now or timezone.now()
        return self.status == RequestStatus.REVIEWED and self.valid_until is not None and now < self.valid_until

    def shown_status(self, now=None) -> str:
        """The status as a person should read it: a reviewed grant past its end is expired
        even before anybody has noticed and marked it."""
        if self.status == RequestStatus.REVIEWED and not self.is_active(now):
            return RequestStatus.EXPIRED
        return self.status

    def shown_status_label(self) -> str:
        return str(RequestStatus(self.shown_status()).label)
