"""The card lifecycle's vocabularies: card actions, fee kinds, outbox topics, import statuses."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Action(models.TextChoices):
    ISSUE = "issue", _("发卡")
    LOSE = "lose", _("挂失")
    FIND = "find", _("解挂")
    REPLACE = "replace", _("补卡")
    REISSUE = "reissue", _("信息变更换卡")
    CANCEL = "cancel", _("注销")
    EXTEND = "extend", _("延期")
    BLACKLIST = "blacklist", _("列入黑名单")
    UNBLACKLIST = "unblacklist", _("移出黑名单")
    GRANT = "grant", _("授权通行")  # R-CARD-7: a temporary card granted a dorm or a door
    REVOKE_GRANT = "revoke_grant", _("撤销授权")


class FeeKind(models.TextChoices):
    LOSS = "loss", _("挂失补卡")
    DAMAGE = "damage", _("损坏补卡")
    IDENTITY_CHANGE = "identity_change", _("信息变更换卡")
    DEVICE_DAMAGE = "device_damage", _("损坏设备赔偿")  # R-DEV-3: human damage, market price


# Why a card is replaced (issue 19, item 7): the fee kinds of a card. 损坏设备赔偿 is a reader's
# repair charged at market price (R-DEV-3), never a reason to replace a card.
REPLACEMENT_REASONS = (FeeKind.LOSS, FeeKind.DAMAGE, FeeKind.IDENTITY_CHANGE)


class ChargeStatus(models.TextChoices):
    """A charge's life (issue 13, defect 6; R-FEE-3): a card fee is paid at the window when it is
    charged; a damage charge is owed from when the repair ticket opens until it is paid, waived
    or voided (with a reason). The ledger counts payments, on the day they are made."""

    OWED = "owed", _("待缴")
    PAID = "paid", _("已缴")
    WAIVED = "waived", _("已减免")
    VOID = "void", _("已作废")


class Topic(models.TextChoices):
    CREDENTIAL = "credential", _("凭证变更")
    CARD_ACTION = "card_action", _("卡务动态")


class ImportStatus(models.TextChoices):
    PREVIEWED = "previewed", _("已预览，待确认")
    APPLIED = "applied", _("已导入")


class ImportKind(models.TextChoices):
    """What a list imported through the one preview → apply pipeline is (issue 18, Build 7):
    enrolment (R-CARD-4/5) and the lists that follow a person after it (R-CARD-6, R-END-2/3)."""

    STUDENT = "student", _("学生名单（教务处）")
    STAFF = "staff", _("教职工名单（人事处）")
    LEAVERS = "leavers", _("离校/退学/离职名单")
    DEFERRAL = "deferral", _("延期毕业名单（教务处）")
    DORM = "dorm", _("宿舍分配名单（学生工作处）")
    STAFF_CHANGE = "staff_change", _("教职工变动名单（人事处）")


class PayChannel(models.TextChoices):
    """How a fee or damage payment was made (R-FEE-3): the channel names the statement it is
    reconciled against (银校对账, issue 18 Build 3)."""

    CASH = "cash", _("现金")
    POS = "pos", _("银行卡（POS）")
    WECHAT = "wechat", _("微信支付")
    ALIPAY = "alipay", _("支付宝")
    PLATFORM = "platform", _("统一支付平台")
