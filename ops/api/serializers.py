"""Request and response shapes of the card API (they document the OpenAPI schema too)."""

from __future__ import annotations

from rest_framework import serializers

from ops.masking import mask_name
from ops.registry.choices import CARD_TYPES, HolderStatus
from ops.registry.lifecycle.choices import REPLACEMENT_REASONS, ImportKind


class BasisIn(serializers.Serializer):
    basis = serializers.CharField(max_length=200, help_text="办理依据：申请表/函件编号")


class IssueIn(BasisIn):
    holder_number = serializers.CharField(max_length=32, help_text="学号或工号")
    uid = serializers.CharField(max_length=24)
    approved_by = serializers.CharField(
        max_length=150,
        required=False,
        help_text="审批人：在册操作员的用户名，或审批部门的代码（R-CARD-9）；临时卡可省略，其审批部门即管理部门",
    )
    card_type = serializers.ChoiceField(choices=CARD_TYPES.choices, required=False)
    owner_department = serializers.CharField(max_length=20, required=False, help_text="临时卡的审批（管理）部门代码")
    valid_until = serializers.DateField(required=False)


class ReplaceIn(BasisIn):
    new_uid = serializers.CharField(max_length=24)
    reason = serializers.ChoiceField(choices=[(k.value, k.label) for k in REPLACEMENT_REASONS])
    fee = serializers.DecimalField(max_digits=8, decimal_places=2, required=False)
    window = serializers.CharField(max_length=40, required=False, default="API")


class CancelIn(BasisIn):
    holder_status = serializers.ChoiceField(choices=HolderStatus.choices, required=False)


class ExtendIn(BasisIn):
    new_until = serializers.DateField()
    approving_department = serializers.CharField(
        max_length=20, required=False, help_text="临时卡：其管理部门的代码（凭该部门的函件延期，函件编号填在 basis）"
    )


class GrantIn(BasisIn):
    """R-CARD-7: one building (every door of it) or one door, for a temporary card."""

    building = serializers.CharField(max_length=20, required=False, help_text="楼宇代码（该楼宇的所有门）")
    device = serializers.CharField(max_length=32, required=False, help_text="或设备编号（仅此一道门）")
    until = serializers.DateField(help_text="授权至（含当日），不晚于卡的有效期")

    def validate(self, attrs: dict) -> dict:
        if bool(attrs.get("building")) == bool(attrs.get("device")):
            raise serializers.ValidationError("请给出楼宇（building）或设备（device）之一")
        return attrs


class GrantOut(serializers.Serializer):
    id = serializers.IntegerField()
    card = serializers.CharField(source="card.uid")
    place = serializers.CharField(source="place_code")
    valid_until = serializers.DateTimeField()
    approving_department = serializers.CharField(source="approving_department.code")
    revoked_at = serializers.DateTimeField(allow_null=True)


class CardOut(serializers.Serializer):
    uid = serializers.CharField()
    card_type = serializers.CharField()
    status = serializers.CharField()
    blacklisted = serializers.BooleanField()
    issue_no = serializers.IntegerField()
    valid_from = serializers.DateTimeField()
    valid_until = serializers.DateTimeField(allow_null=True)
    holder_number = serializers.CharField(source="holder.number")
    holder_name = serializers.SerializerMethodField(help_text="masked")

    def get_holder_name(self, card) -> str:
        return mask_name(card.holder.name)


class ImportIn(serializers.Serializer):
    kind = serializers.ChoiceField(choices=ImportKind.choices)  # issue 18, Build 7: every list kind
    file = serializers.FileField(help_text="CSV 或 XLSX，表头为中文（姓名、学号、身份证号…）")
    photos = serializers.FileField(required=False, help_text="按学号/工号命名的照片 zip")


class RowErrorOut(serializers.Serializer):
    row = serializers.IntegerField(help_text="row number as in Excel (header = 1)")
    column = serializers.CharField()
    value = serializers.CharField(allow_blank=True)
    message = serializers.CharField()


class ImportOut(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    filename = serializers.CharField()
    rows = serializers.IntegerField()
    create = serializers.IntegerField()  # type: ignore[assignment]  # output-only: the API's field name hides save()'s create(), never called
    update = serializers.IntegerField()  # type: ignore[assignment]  # output-only: the API's field name hides save()'s update(), never called
    unchanged = serializers.IntegerField()
    rejected = serializers.IntegerField()
    rejected_rows = RowErrorOut(many=True)
