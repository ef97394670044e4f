"""The scheduled jobs' vocabulary (issue 16, Build 4)."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class RunOutcome(models.TextChoices):
    RUNNING = "running", _("运行中")
    OK = "ok", _("成功")
    FAILED = "failed", _("失败")
