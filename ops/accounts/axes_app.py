"""django-axes (login lockout, R-SEC-1) under a Chinese name in the admin (issue 19, item 6: the
admin showed "AXES", "Access attempts", "Access logs"). Its models' and fields' labels come from
the Simplified Chinese catalogue ``ops/locale/zh_Hans/LC_MESSAGES/django.po`` (axes ships none);
its records' names (English f-strings in axes, shown in the admin's lists) are given here."""

from typing import Any

from axes.apps import AppConfig as AxesAppConfig
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _


def _log_name(self: Any) -> str:
    return gettext("%(username)s 的登录记录（%(time)s）") % {"username": self.username, "time": self.attempt_time}


def _attempt_name(self: Any) -> str:
    return gettext("%(username)s 的登录尝试（%(time)s）") % {
        "username": self.username,
        "time": self.attempt_time,
    }


def _failure_name(self: Any) -> str:
    return gettext("%(username)s 登录失败（%(time)s，来自 %(ip)s）") % {
        "username": self.username,
        "time": self.attempt_time,
        "ip": self.ip_address,
    }


class AxesConfig(AxesAppConfig):
    verbose_name = _("登录锁定")

    def ready(self) -> None:
        super().ready()
        names = {"AccessLog": _log_name, "AccessAttempt": _attempt_name, "AccessFailureLog": _failure_name}
        for model, name in names.items():
            self.get_model(model).__str__ = name  # axes' own are English f-strings
