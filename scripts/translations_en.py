"""English for the UI strings (msgid is the Simplified Chinese text). Run
`python scripts/translations_en.py` after `campuscard makemessages -l en` to fill the .po file,
then `campuscard compilemessages`."""

from __future__ import annotations

import re
from pathlib import Path

EN = {
    "实时看板": "Live dashboards", "校园一卡通运营平台": "Campus Card Operations", "首页": "Home",
    "管理后台": "Admin", "退出": "Log out", "校门通行实时监控": "Gate traffic — live",
    "今日通过": "Allowed today", "今日拒绝": "Denied today", "拒绝原因": "Deny reasons",
    "各闸机每分钟刷卡次数（近30分钟）": "Taps per minute per gate (last 30 minutes)",
    "最新刷卡": "Latest taps", "连接中…": "Connecting…", "时间": "Time", "闸机": "Gate",
    "持卡人": "Cardholder", "卡号": "Card", "方向": "Direction", "结果": "Result",
    "允许": "Allowed", "（未知）": "(unknown)", "次/分钟": "taps/min", "角色": "Role",
    "操作员与权限": "Operators and permissions", "部门": "Department",
    "负责楼宇": "Buildings in charge",
    "宿管只能看到这些楼宇的门禁": "A dorm manager sees only these buildings' doors",
    "操作员": "Operator", "网信中心管理员": "NIC administrator", "保卫处": "Security office",
    "学生工作处/宿管": "Student Affairs / dorm manager", "人事处": "Human Resources",
    "教务处": "Academic Affairs", "总务处": "General Affairs", "计划财务处": "Finance",
    "图书馆": "Library", "分管领导": "Responsible leader", "姓名": "Name",
    "身份证号": "Citizen ID", "手机号": "Phone", "学工号": "Student/staff number",
    "校园卡与设备": "Cards and devices", "学生": "Student", "教职工": "Staff",
    "外聘人员": "External hire", "短期服务人员": "Short-term service staff",
    "物业外包人员": "Contractor staff", "商户": "Merchant", "教工卡": "Staff card",
    "学生卡": "Student card", "临时卡": "Temporary card", "正常": "Active", "挂失": "Lost",
    "已补卡作废": "Replaced (void)", "已注销": "Cancelled", "人行道闸": "Pedestrian gate",
    "车辆道闸": "Vehicle gate", "宿舍门禁": "Dorm door", "图书馆读卡器": "Library reader",
    "桌面读卡器": "Desk reader", "未上线": "Never seen", "在线": "Online", "故障": "Fault",
    "静默": "Silent", "通过": "OK", "未知卡": "Unknown card", "已挂失": "Reported lost",
    "已过期": "Expired", "未到生效期": "Not yet valid", "黑名单": "Blacklisted",
    "无此功能权限": "Function not allowed", "防潜回": "Anti-passback",
    "不在允许时段": "Outside schedule", "拒绝": "Denied", "进": "In", "出": "Out", "—": "—",
    "代码": "Code", "名称": "Name", "宿舍楼": "Dorm building", "楼宇": "Building",
    "类别": "Kind", "部门/学系": "Department", "卡号(UID)": "Card UID", "卡类型": "Card type",
    "状态": "Status", "发卡序号": "Issue number", "生效时间": "Valid from",
    "失效时间": "Valid until", "校园卡": "Campus card", "设备编号": "Device code",
    "类型": "Kind", "位置": "Location", "所属部门": "Owning department",
    "最后心跳": "Last heard", "凭证版本": "Credential version", "设备": "Device",
    "事件ID": "Event ID", "卡": "Card", "刷卡时间": "Tapped at", "入库时间": "Recorded at",
    "原因": "Reason", "通行记录": "Access event", "简体中文": "简体中文", "English": "English",
    "欢迎": "Welcome", "您的角色": "Your role",
    "您的账号尚未分配角色，请联系网信中心。": "Your account has no role yet; please contact NIC.",
    "您的工作台正在建设中。卡务管理请进入": "Your desk is being built. For card management go to",
    "您已安全退出。": "You have logged out.", "重新登录": "Log in again", "登录": "Log in",
    "操作员登录": "Operator login",
    "用户名或密码不正确，请重试。": "Wrong username or password; please try again.",
    "用户名": "Username", "密码": "Password", "退出登录": "Log out", "确认退出": "Log out now",
    "取消": "Cancel", "校园一卡通运营平台 · 管理后台": "Campus Card Operations · Admin",
    "校园一卡通": "Campus Card", "卡务与设备管理": "Cards and devices", "实时": "Live",
}

PO = Path(__file__).resolve().parent.parent / "ops" / "locale" / "en" / "LC_MESSAGES" / "django.po"


def fill() -> list[str]:
    text = PO.read_text(encoding="utf-8")
    missing: list[str] = []

    def sub(match: re.Match[str]) -> str:
        msgid = match.group(1)
        if msgid in EN:
            return f'msgid "{msgid}"\nmsgstr "{EN[msgid]}"'
        if msgid:
            missing.append(msgid)
        return match.group(0)

    text = re.sub(r'msgid "(.*)"\nmsgstr ""', sub, text)
    text = text.replace("#, fuzzy\n", "", 1)
    PO.write_text(text, encoding="utf-8")
    return missing


if __name__ == "__main__":
    left = fill()
    print("untranslated:", left or "none")
