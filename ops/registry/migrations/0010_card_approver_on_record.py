# Issue 13, defect 5 (R-CARD-9): who approved an issuance is an operator and/or a department on
# record, no longer free text. The free-text column becomes the legacy ``approval_note``; the
# next migration moves what it can match onto the new foreign keys.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('campus', '0009_device_agent'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RenameField(
            model_name='card',
            old_name='approved_by',
            new_name='approval_note',
        ),
        migrations.AlterField(
            model_name='card',
            name='approval_note',
            field=models.CharField(blank=True, editable=False, max_length=100, verbose_name='旧审批记录（迁移前的自由文本，未核实）'),
        ),
        migrations.AddField(
            model_name='card',
            name='approved_by_operator',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='approved_cards', to=settings.AUTH_USER_MODEL, verbose_name='审批人（在册操作员）'),
        ),
        migrations.AddField(
            model_name='card',
            name='approving_department',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='approved_cards', to='campus.department', verbose_name='审批部门'),
        ),
    ]
