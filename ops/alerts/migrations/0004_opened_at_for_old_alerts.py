"""Alerts raised before the workflow existed: they were open since they first happened
(so they escalate and count in MTTA like the rest)."""

from django.db import migrations
from django.db.models import F


def forwards(apps, schema_editor):
    Alert = apps.get_model("alerts", "Alert")
    Alert.objects.filter(opened_at__isnull=True).update(opened_at=F("first_at"))


class Migration(migrations.Migration):
    dependencies = [("alerts", "0003_alert_ack_comment_alert_acknowledged_at_and_more")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
