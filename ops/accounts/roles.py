"""Operator roles (R-ROLE-2) and which desk each one lands on."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    NIC = "nic", _("网信中心管理员")
    SECURITY = "security", _("保卫处")
    DORM_MANAGER = "dorm_manager", _("学生工作处/宿管")
    HR = "hr", _("人事处")
    ACADEMIC = "academic", _("教务处")
    GENERAL = "general", _("总务处")
    FINANCE = "finance", _("计划财务处")
    LIBRARY = "library", _("图书馆")
    LEADER = "leader", _("分管领导")


# Who may watch gate traffic (R-OPS-2): the security office, and NIC who runs everything.
GATE_VIEWERS = frozenset({Role.SECURITY, Role.NIC})
# Who watches card-management actions live (R-OPS-5): NIC, the security office (a loss report
# matters at the gate), General Affairs (it manages contractors' temporary cards).
CARD_ACTION_VIEWERS = frozenset({Role.NIC, Role.SECURITY, Role.GENERAL})
# Who watches device health and works device alerts (R-OPS-3, R-DEV-2): NIC.
DEVICE_VIEWERS = frozenset({Role.NIC})
# Who watches dorm doors (R-OPS-4): dorm managers (their own buildings only) and NIC.
DORM_VIEWERS = frozenset({Role.DORM_MANAGER, Role.NIC})
# Who may see a cardholder's photo (a guard must recognise the person at the gate).
PHOTO_VIEWERS = frozenset({Role.SECURITY, Role.NIC})
# Who starts and ends a muster (an emergency roll call of a building, issue 17): the security
# office and NIC, for every building.
MUSTER_LEADERS = frozenset({Role.SECURITY, Role.NIC})
# Who watches muster boards: those, and dorm managers (their own buildings only).
MUSTER_VIEWERS = frozenset({Role.SECURITY, Role.NIC, Role.DORM_MANAGER})
# Who starts, approves and ends an emergency mode (lockdown, unlock-all; issue 17, Build 2): the
# security office. Every operator with a role sees the banner of the modes in force.
EMERGENCY_LEADERS = frozenset({Role.SECURITY})
# Who forgives anti-passback, for one person or a whole zone (issue 17, Build 5; R-SEC-5): the
# security office alone — it owns the gates' anti-passback and answers for lifting it.
PASSBACK_FORGIVERS = frozenset({Role.SECURITY})
# Who opens the Library's workbench (issue 18, Build 5): its readers, their faults, the SIP2
# server's traffic today — the library, and NIC who runs everything.
LIBRARY_VIEWERS = frozenset({Role.LIBRARY, Role.NIC})
# Who files device install/move/removal requests (issue 18, Build 2; R-DEV-1, R-DEV-4): every
# department for its own devices (ops.registry.approvals.services checks the department), NIC
# for all — and only NIC approves them.
DEVICE_REQUESTERS = frozenset(Role) - {Role.LEADER}
# Who reports faults of their own department's devices and follows the repair (issue 18, Build 1;
# R-ROLE-3, R-DEV-4): the user departments — the Campus Management Office has no role of its own
# yet, its operators hold General Affairs' with their own department. NIC triages all of them.
REPAIR_REPORTERS = frozenset({Role.SECURITY, Role.DORM_MANAGER, Role.LIBRARY, Role.GENERAL})
REPAIR_VIEWERS = REPAIR_REPORTERS | {Role.NIC}
# Who opens the reports for leadership (issue 18, Build 4): the responsible leader, and NIC.
REPORT_VIEWERS = frozenset({Role.LEADER, Role.NIC})

# Where each role lands after login (its own desk).
LANDING = {
    Role.SECURITY: "/live/gates/",
    Role.NIC: "/live/devices/",
    Role.DORM_MANAGER: "/live/dorm/",
    # General Affairs lands on its workbench (issue 19, item 11: its temporary cards ending
    # soon, ops.workbench); the card-action feed is one of its places
    Role.LIBRARY: "/library/",
}

# Admin permissions each role's group holds (R-SEC-3: granted by NIC, one place; changes audited).
ROLE_PERMISSIONS: dict[Role, list[str]] = {
    Role.NIC: [
        "campus.view_card",
        "campus.change_card",
        "campus.view_cardholder",
        "campus.change_cardholder",
        "campus.add_cardholder",
        "campus.view_device",
        "campus.change_device",
        "campus.add_device",
        "campus.view_accessevent",
        "cards.view_cardaction",
        "cards.view_feecharge",
        "cards.view_importbatch",
        "cards.view_feepolicy",
        # R-SEC-3: accounts, roles and groups are NIC's to grant (ops/accounts/permission_changes.py),
        # and NIC unlocks an account django-axes locked out
        "auth.view_user",
        "auth.add_user",
        "auth.change_user",
        "auth.view_group",
        "auth.add_group",
        "auth.change_group",
        "accounts.view_operator",
        "accounts.add_operator",
        "accounts.change_operator",
        "axes.view_accessattempt",
        "axes.delete_accessattempt",
        # issue 16: who is told about alerts, and how — NIC's to set (every change audited)
        *(
            f"alerts.{action}_{model}"
            for model in ("notificationchannel", "routingrule", "dutyroster", "dutyshift")
            for action in ("view", "add", "change", "delete")
        ),
        "alerts.view_notification",
        "alerts.view_deliveryattempt",
        # issue 18, Build 1: the repair tickets (read-only: steps go through ops.alerts.repairs)
        "alerts.view_repairticket",
        "alerts.view_repairstep",
        # issue 17: which desk readers are assembly points (every change audited); the musters
        *(f"muster.{action}_musterpoint" for action in ("view", "add", "change", "delete")),
        "muster.view_muster",
        # issue 17, Build 1: the academic calendar, door groups and opening hours are NIC's; dorm
        # rules and the stay list NIC's and Student Affairs' (the services check who, per kind)
        *(
            f"door_calendar.{action}_{model}"
            for model in ("calendarday", "doorgroup", "doorrule")
            for action in ("view", "add", "change", "delete")
        ),
        "door_calendar.view_vacationstay",
        "door_calendar.add_vacationstay",
        "door_calendar.change_vacationstay",
        # issue 18, Build 6: the cardholders' self-service passwords, set at NIC's desk (audited)
        "selfservice.view_holderpassword",
        "selfservice.add_holderpassword",
        "selfservice.change_holderpassword",
        # issue 18, Build 2: the record of device requests (filed and decided on /devices/requests/)
        "device_approvals.view_devicerequest",
    ],
    # issue 17, Build 1: Student Affairs sets dorm curfews and vacation closure and keeps the
    # stay list, for the buildings assigned to it (ops.registry.calendar.services)
    Role.DORM_MANAGER: [
        "door_calendar.view_calendarday",
        "door_calendar.view_doorgroup",
        "door_calendar.view_doorrule",
        "door_calendar.add_doorrule",
        "door_calendar.change_doorrule",
        "door_calendar.delete_doorrule",
        "door_calendar.view_vacationstay",
        "door_calendar.add_vacationstay",
        "door_calendar.change_vacationstay",
        # issue 18, Build 7: the dorm assignment lists of its buildings (ops.registry.lifecycle.list_kinds)
        "cards.view_importbatch",
    ],
    Role.GENERAL: ["campus.view_card", "campus.change_card", "campus.view_cardholder"],
    Role.FINANCE: [
        "cards.view_feecharge",
        "cards.view_feepolicy",
        "cards.change_feepolicy",
        # R-FEE-3 (issue 18, Build 3): bank reconciliation and day closing
        "cards.view_bankstatement",
        "cards.view_closedday",
    ],
    Role.HR: ["cards.view_importbatch", "campus.view_cardholder"],
    Role.ACADEMIC: ["cards.view_importbatch", "campus.view_cardholder"],
}

# Who may ask 为什么被拒绝？ (the card admin's explain page): the roles holding the card view
# permission — linked from their navigation and workbench (issue 19, item 5)
CARD_READERS = frozenset(role for role, perms in ROLE_PERMISSIONS.items() if "campus.view_card" in perms)
WHY_DENIED_URL = "/admin/campus/card/explain/"

# Every place an operator works, in the order the navigation shows them, and who may enter it.
PLACES = [
    ("/live/gates/", _("校门值班台"), GATE_VIEWERS),
    ("/live/devices/", _("设备值班台"), DEVICE_VIEWERS),
    ("/live/dorm/", _("宿舍门禁"), DORM_VIEWERS),
    ("/live/muster/", _("紧急清点"), MUSTER_VIEWERS),
    ("/emergency/", _("紧急模式"), EMERGENCY_LEADERS),
    ("/passback/", _("防潜回豁免"), PASSBACK_FORGIVERS),
    ("/live/cards/", _("卡务动态"), CARD_ACTION_VIEWERS),
    ("/library/", _("图书馆工作台"), LIBRARY_VIEWERS),
    ("/devices/requests/", _("设备安装/移位申请"), DEVICE_REQUESTERS),
    ("/repairs/", _("设备报修"), REPAIR_VIEWERS),
    ("/reports/", _("统计报表"), REPORT_VIEWERS),
    (WHY_DENIED_URL, _("为什么被拒绝？"), CARD_READERS),
    ("/privacy/requests/", _("个人数据查询"), frozenset(Role)),
    ("/admin/", _("管理后台"), frozenset(ROLE_PERMISSIONS)),
]


def places_for(role: Role | None) -> list[tuple[str, str]]:
    """(address, label) of the places ``role`` may enter."""
    return [(href, str(label)) for href, label, who in PLACES if role in who]
