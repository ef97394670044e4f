"""Bank reconciliation (R-FEE-3; issue 18, Build 3): payments carry a channel and a reference,
statements and closed days are stored, and a closed day is locked in the database: a trigger
refuses any insert, update or delete of a paid charge inside a closed day (and any change to a
closing). Payments already in the ledger are cash with a JF reference."""

import django.db.models.deletion
from decimal import Decimal
from django.conf import settings
from django.db import migrations, models


LOCK_SQL = """
CREATE OR REPLACE FUNCTION cards_fee_closed_day_lock() RETURNS trigger AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.status = 'paid' AND OLD.paid_at IS NOT NULL AND EXISTS (
      SELECT 1 FROM cards_closedday d WHERE OLD.paid_at >= d.starts_at AND OLD.paid_at < d.ends_at
      AND (d."window" = '' OR d."window" = OLD."window")) THEN
    RAISE EXCEPTION 'fee charge % is in a closed day (R-FEE-3): locked; corrections are new entries', OLD.id
      USING ERRCODE = 'check_violation';
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.status = 'paid' AND NEW.paid_at IS NOT NULL AND EXISTS (
      SELECT 1 FROM cards_closedday d WHERE NEW.paid_at >= d.starts_at AND NEW.paid_at < d.ends_at
      AND (d."window" = '' OR d."window" = NEW."window")) THEN
    RAISE EXCEPTION 'a payment in a closed day (R-FEE-3): locked; corrections are new entries'
      USING ERRCODE = 'check_violation';
  END IF;
  IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER cards_fee_closed_day_lock BEFORE INSERT OR UPDATE OR DELETE ON cards_feecharge
  FOR EACH ROW EXECUTE FUNCTION cards_fee_closed_day_lock();
CREATE OR REPLACE FUNCTION cards_closedday_final() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'a closed day is never reopened (R-FEE-3)' USING ERRCODE = 'check_violation';
END $$ LANGUAGE plpgsql;
CREATE TRIGGER cards_closedday_final BEFORE UPDATE OR DELETE ON cards_closedday
  FOR EACH ROW EXECUTE FUNCTION cards_closedday_final();
"""
UNLOCK_SQL = """
DROP TRIGGER IF EXISTS cards_closedday_final ON cards_closedday;
DROP FUNCTION IF EXISTS cards_closedday_final();
DROP TRIGGER IF EXISTS cards_fee_closed_day_lock ON cards_feecharge;
DROP FUNCTION IF EXISTS cards_fee_closed_day_lock();
"""


def lock(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(LOCK_SQL, params=None)


def unlock(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(UNLOCK_SQL, params=None)


def backfill(apps, schema_editor):
    from django.utils import timezone

    FeeCharge = apps.get_model("cards", "FeeCharge")
    for charge in FeeCharge.objects.filter(status="paid", reference=""):
        day = timezone.localtime(charge.paid_at or charge.at).strftime("%Y%m%d")
        FeeCharge.objects.filter(pk=charge.pk).update(channel="cash", reference=f"JF{day}{charge.pk:08d}")


class Migration(migrations.Migration):
    dependencies = [
        ("campus", "0015_accessevent_reason_lockdown"),
        ("cards", "0007_outbox_credential_uid"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="BankStatement",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("day", models.DateField(db_index=True, verbose_name="对账日期")),
                (
                    "channel",
                    models.CharField(
                        choices=[
                            ("cash", "现金"),
                            ("pos", "银行卡（POS）"),
                            ("wechat", "微信支付"),
                            ("alipay", "支付宝"),
                            ("platform", "统一支付平台"),
                        ],
                        max_length=10,
                        verbose_name="支付渠道",
                    ),
                ),
                ("filename", models.CharField(max_length=200, verbose_name="文件名")),
                ("sha256", models.CharField(max_length=64, verbose_name="文件摘要")),
                ("columns", models.JSONField(default=dict, verbose_name="列名")),
                ("rows", models.PositiveIntegerField(default=0, verbose_name="行数")),
                (
                    "total",
                    models.DecimalField(
                        decimal_places=2, default=Decimal("0.00"), max_digits=12, verbose_name="金额合计（元）"
                    ),
                ),
                ("imported_at", models.DateTimeField(auto_now_add=True, verbose_name="导入时间")),
            ],
            options={
                "verbose_name": "银行对账单",
                "verbose_name_plural": "银行对账单",
                "ordering": ["-day", "-id"],
            },
        ),
        migrations.CreateModel(
            name="ClosedDay",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("day", models.DateField(verbose_name="结账日期")),
                (
                    "window",
                    models.CharField(blank=True, help_text="空白表示全部窗口", max_length=40, verbose_name="收费窗口"),
                ),
                ("starts_at", models.DateTimeField()),
                ("ends_at", models.DateTimeField()),
                ("note", models.CharField(blank=True, max_length=500, verbose_name="结账说明")),
                ("summary", models.JSONField(default=dict, verbose_name="结账时对账结果")),
                ("closed_at", models.DateTimeField(auto_now_add=True, verbose_name="结账时间")),
            ],
            options={
                "verbose_name": "日结",
                "verbose_name_plural": "日结",
                "ordering": ["-day", "window"],
            },
        ),
        migrations.CreateModel(
            name="StatementLine",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("row", models.PositiveIntegerField(verbose_name="行号")),
                ("reference", models.CharField(max_length=64, verbose_name="支付流水号")),
                ("amount", models.DecimalField(decimal_places=2, max_digits=10, verbose_name="金额（元）")),
                ("paid_at", models.CharField(blank=True, max_length=40, verbose_name="交易时间")),
            ],
            options={
                "verbose_name": "对账单明细",
                "verbose_name_plural": "对账单明细",
                "ordering": ["statement", "row"],
            },
        ),
        migrations.AddField(
            model_name="feecharge",
            name="channel",
            field=models.CharField(
                blank=True,
                choices=[
                    ("cash", "现金"),
                    ("pos", "银行卡（POS）"),
                    ("wechat", "微信支付"),
                    ("alipay", "支付宝"),
                    ("platform", "统一支付平台"),
                ],
                max_length=10,
                verbose_name="支付渠道",
            ),
        ),
        migrations.AddField(
            model_name="feecharge",
            name="reference",
            field=models.CharField(blank=True, max_length=64, verbose_name="支付流水号"),
        ),
        migrations.AddConstraint(
            model_name="feecharge",
            constraint=models.UniqueConstraint(
                condition=models.Q(("reference", ""), _negated=True), fields=("reference",), name="fee_reference_unique"
            ),
        ),
        migrations.AddField(
            model_name="bankstatement",
            name="imported_by",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
                verbose_name="操作员",
            ),
        ),
        migrations.AddField(
            model_name="closedday",
            name="closed_by",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
                verbose_name="结账人",
            ),
        ),
        migrations.AddField(
            model_name="statementline",
            name="statement",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT, related_name="lines", to="cards.bankstatement"
            ),
        ),
        migrations.AddConstraint(
            model_name="closedday",
            constraint=models.UniqueConstraint(fields=("day", "window"), name="closed_day_window_unique"),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
        migrations.RunPython(lock, unlock),
    ]
