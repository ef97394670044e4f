from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ReportsConfig(AppConfig):
    """Reports for leadership (issue 18, Build 4): daily, weekly, monthly and per-semester
    figures on a page (``/reports/``) and as one XLSX per report, mailed to the leader role by
    the supervisor's scheduler."""

    name = "ops.reports"
    label = "reports"
    verbose_name = _("统计报表")

    def ready(self) -> None:
        # the scheduler sits in a room below this one: the mailing job is handed to it here
        # (as ops.backup does with its backups)
        from ops.pipeline.scheduled import register
        from ops.reports.mailing import JOB

        register(JOB)
