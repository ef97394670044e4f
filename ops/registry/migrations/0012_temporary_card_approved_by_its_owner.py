# R-CARD-7 "谁审批，谁管理": a temporary card is approved by the department that owns it — held by
# the database once the previous migration gave every temporary card its approving department.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('campus', '0011_card_approver_from_legacy_text'),
    ]

    operations = [
        migrations.AddConstraint(
            model_name='card',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('card_type', 'temporary'), _negated=True), models.Q(('approving_department__isnull', False), ('approving_department', models.F('owner_department'))), _connector='OR'), name='temporary_card_approved_by_its_owner'),
        ),
    ]
