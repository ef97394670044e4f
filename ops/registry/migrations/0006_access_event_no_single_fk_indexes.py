"""Access events lose their single-column indexes on device_id and holder_id (issue 14): the
composite indexes event_device_time and event_holder_time lead with the same columns and serve
every look-up by either, and each index is paid on every tap inserted. Only the indexes go: the
foreign keys stay as they are (Django's own AlterField would drop and re-add them, and re-adding
one checks every stored tap — minutes on a year of taps)."""

from __future__ import annotations

import django.db.models.deletion
from django.db import migrations, models

INDEXES = {
    "campus_accessevent_device_id_aa616c77": "device_id",
    "campus_accessevent_holder_id_8111d92c": "holder_id",
}


class Migration(migrations.Migration):
    dependencies = [("campus", "0005_partition_access_events")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="accessevent",
                    name="device",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="events",
                        to="campus.device",
                        verbose_name="设备",
                    ),
                ),
                migrations.AlterField(
                    model_name="accessevent",
                    name="holder",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="events",
                        to="campus.cardholder",
                        verbose_name="持卡人",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f"DROP INDEX IF EXISTS {name}",
                    reverse_sql=f"CREATE INDEX IF NOT EXISTS {name} ON campus_accessevent ({column})",
                )
                for name, column in INDEXES.items()
            ],
        )
    ]
