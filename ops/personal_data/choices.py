"""Personal-data requests' vocabulary: their statuses."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class RequestStatus(models.TextChoices):
    FILED = "filed", _("待领导审批")
    APPROVED = "approved", _("待网信中心复核")
    REJECTED = "rejected", _("未通过")
    REVIEWED = "reviewed", _("已授权")
    EXPIRED = "expired", _("授权已过期")
    REVOKED = "revoked", _("已撤销")
