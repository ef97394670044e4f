"""English for the UI strings (msgid is the Simplified Chinese text). Run
`python scripts/translations_en.py` after `campuscard makemessages -l en` to fill the .po file,
then `campuscard compilemessages`."""

from __future__ import annotations

import re
from pathlib import Path

EN = {
    "实时看板": "Live dashboards",
    "校园一卡通运营平台": "Campus Card Operations",
    "首页": "Home",
    "管理后台": "Admin",
    "退出": "Log out",
    "校门通行实时监控": "Gate traffic — live",
    "今日通过": "Allowed today",
    "今日拒绝": "Denied today",
    "拒绝原因": "Deny reasons",
    "各闸机每分钟刷卡次数（近30分钟）": "Taps per minute per gate (last 30 minutes)",
    "最新刷卡": "Latest taps",
    "连接中…": "Connecting…",
    "时间": "Time",
    "闸机": "Gate",
    "持卡人": "Cardholder",
    "卡号": "Card",
    "方向": "Direction",
    "结果": "Result",
    "允许": "Allowed",
    "（未知）": "(unknown)",
    "次/分钟": "taps/min",
    "角色": "Role",
    "操作员与权限": "Operators and permissions",
    "部门": "Department",
    "负责楼宇": "Buildings in charge",
    "宿管只能看到这些楼宇的门禁": "A dorm manager sees only these buildings' doors",
    "操作员": "Operator",
    "网信中心管理员": "NIC administrator",
    "保卫处": "Security office",
    "学生工作处/宿管": "Student Affairs / dorm manager",
    "人事处": "Human Resources",
    "教务处": "Academic Affairs",
    "总务处": "General Affairs",
    "计划财务处": "Finance",
    "图书馆": "Library",
    "分管领导": "Responsible leader",
    "姓名": "Name",
    "身份证号": "Citizen ID",
    "手机号": "Phone",
    "学工号": "Student/staff number",
    "校园卡与设备": "Cards and devices",
    "学生": "Student",
    "教职工": "Staff",
    "外聘人员": "External hire",
    "短期服务人员": "Short-term service staff",
    "物业外包人员": "Contractor staff",
    "商户": "Merchant",
    "教工卡": "Staff card",
    "学生卡": "Student card",
    "临时卡": "Temporary card",
    "正常": "Active",
    "挂失": "Lost",
    "已补卡作废": "Replaced (void)",
    "已注销": "Cancelled",
    "人行道闸": "Pedestrian gate",
    "车辆道闸": "Vehicle gate",
    "宿舍门禁": "Dorm door",
    "图书馆读卡器": "Library reader",
    "桌面读卡器": "Desk reader",
    "未上线": "Never seen",
    "在线": "Online",
    "故障": "Fault",
    "静默": "Silent",
    "通过": "OK",
    "未知卡": "Unknown card",
    "已挂失": "Reported lost",
    "已过期": "Expired",
    "未到生效期": "Not yet valid",
    "黑名单": "Blacklisted",
    "无此功能权限": "Function not allowed",
    "防潜回": "Anti-passback",
    "不在允许时段": "Outside schedule",
    "拒绝": "Denied",
    "进": "In",
    "出": "Out",
    "—": "—",
    "代码": "Code",
    "名称": "Name",
    "宿舍楼": "Dorm building",
    "楼宇": "Building",
    "类别": "Kind",
    "部门/学系": "Department",
    "卡号(UID)": "Card UID",
    "卡类型": "Card type",
    "状态": "Status",
    "发卡序号": "Issue number",
    "生效时间": "Valid from",
    "失效时间": "Valid until",
    "校园卡": "Campus card",
    "设备编号": "Device code",
    "类型": "Kind",
    "位置": "Location",
    "所属部门": "Owning department",
    "最后心跳": "Last heard",
    "凭证版本": "Credential version",
    "设备": "Device",
    "事件ID": "Event ID",
    "卡": "Card",
    "刷卡时间": "Tapped at",
    "入库时间": "Recorded at",
    "原因": "Reason",
    "通行记录": "Access event",
    "简体中文": "简体中文",
    "English": "English",
    "欢迎": "Welcome",
    "您的角色": "Your role",
    "您的账号尚未分配角色，请联系网信中心。": "Your account has no role yet; please contact NIC.",
    "您的工作台正在建设中。卡务管理请进入": "Your desk is being built. For card management go to",
    "您已安全退出。": "You have logged out.",
    "重新登录": "Log in again",
    "登录": "Log in",
    "操作员登录": "Operator login",
    "用户名或密码不正确，请重试。": "Wrong username or password; please try again.",
    "用户名": "Username",
    "密码": "Password",
    "退出登录": "Log out",
    "确认退出": "Log out now",
    "取消": "Cancel",
    "校园一卡通运营平台 · 管理后台": "Campus Card Operations · Admin",
    "校园一卡通": "Campus Card",
    "卡务与设备管理": "Cards and devices",
    "实时": "Live",
    "告警": "Alerts",
    "未登记设备": "Unregistered device",
    "签名无效（伪造报文）": "Bad signature (forged message)",
    "重放报文": "Replayed message",
    "报文序号缺失": "Sequence gap",
    "同一设备号在两处同时上传": "One device id uploading from two places",
    "设备停止上传": "Device stopped uploading",
    "设备被拆/被撬": "Device tampered with",
    "设备故障": "Device fault",
    "疑似克隆卡": "Suspected cloned card",
    "已补卡的旧卡仍在使用": "Old card of a replacement still in use",
    "黑名单卡刷卡": "Blacklisted card presented",
    "设备未及时收到凭证变更（如挂失）": "Device has not received a credential change (e.g. a loss report) in time",
    "提示": "Info",
    "警告": "Warning",
    "严重": "Critical",
    "未处理": "Open",
    "已确认": "Acknowledged",
    "已解决": "Resolved",
    "级别": "Severity",
    "设备编号或卡号": "Device code or card UID",
    "首次发生": "First seen",
    "最近发生": "Last seen",
    "次数": "Count",
    "详情": "Details",
    "为什么被拒绝？": "Why was it denied?",
    "生成/更换设备密钥（只显示一次）": "Issue / rotate device key (shown once)",
    "设备密钥": "Device keys",
    "没有编号为 %(code)s 的设备": "There is no device with code %(code)s",
    "有效期": "Validity",
    "长期": "long-term",
    "此卡现在可以在该设备通行。": "This card is allowed at this device now.",
    "系统中没有这张卡：可能是未登记的卡、外校卡或复制卡。": "This card is not in the system: an unregistered card, a card from elsewhere, or a copy.",
    "此卡已挂失。如已找回，请持身份证到网信中心办理解挂。": "This card is reported lost. If it was found, the holder brings ID to NIC to have it unblocked.",
    "此卡已注销或已补卡作废，永久失效；请使用新卡。": "This card is cancelled or was replaced and is void for ever; use the new card.",
    "此卡在黑名单中，请联系保卫处。": "This card is blacklisted; contact the security office.",
    "此卡尚未到生效时间。": "This card is not valid yet.",
    "此卡已过有效期；临时卡延期须凭单位函件办理。": "This card has expired; a temporary card is extended with the unit's letter.",
    "此类卡不能在这类设备使用（例如临时卡不能进图书馆或宿舍，宿舍门只对本楼住宿学生开放）。": "This type of card cannot be used at this kind of device (e.g. temporary cards never open the library or dorms; a dorm door opens only for its own residents).",
    "拒绝原因：%(reason)s（该设备允许：%(types)s）": "Denied: %(reason)s (this device accepts: %(types)s)",
    "门禁晚归开始": "Curfew starts",
    "门禁晚归结束": "Curfew ends",
    "待上传事件": "Buffered events",
    "启动纪元": "Boot epoch",
    "最后序号": "Last sequence number",
    "心跳间隔（秒）": "Heartbeat interval (s)",
    "关闭": "Off",
    "软（放行并标记）": "Soft (allow and flag)",
    "硬（拒绝）": "Hard (deny)",
    "防潜回区域": "Anti-passback area",
    "地点分组": "Site",
    "同一地点分组内的设备间无需通行时间（克隆卡检测）": "Devices of one site need no travel time between them (clone detection)",
    "标记": "Flags",
    "密钥只显示这一次：请立即配置到读卡器（campuscard reader 的 key_hex）。旧密钥已失效。": "The key is shown only this once: configure it on the reader now (key_hex of campuscard reader). The old key no longer works.",
    "密钥": "Key",
    "返回设备列表": "Back to the devices",
    "查询": "Look up",
    "允许通行": "Allowed",
    "最新卡务": "Latest card actions",
    "毕业注销/延期": "Graduation (cancel/extend)",
    "今日暂无卡务": "No card actions today yet",
    "校门通行": "Gate traffic",
    "今日%(action)s": "%(action)s today",
    # issue 5: the desks and the alert workflow
    "确认已失效（复发）": "Acknowledgement lapsed (fault returned)",
    "抖动·已抑制": "Flapping · suppressed",
    "已升级 %(n)s 级": "Escalated (level %(n)s)",
    "已恢复·待关闭": "Recovered · to be closed",
    "地点：%(w)s": "Where: %(w)s",
    "对象：%(s)s": "Subject: %(s)s",
    "首次 %(a)s · 最近 %(b)s": "First %(a)s · last %(b)s",
    "持卡人：%(h)s": "Holder: %(h)s",
    "卡类型：%(t)s": "Card type: %(t)s",
    "处理人：%(u)s": "Assigned to: %(u)s",
    "确认：%(c)s（%(u)s）": "Acknowledged: %(c)s (%(u)s)",
    "处理 →": "Handle →",
    "持卡人照片": "Cardholder's photo",
    "无照片": "No photo",
    "其他": "Other",
    "校门值班台": "Security desk",
    "设备值班台": "NIC desk",
    "设备告警（按楼宇）": "Device alerts (by building)",
    "设备状态": "Device health",
    "从未上线": "never seen",
    "%(n)s秒前": "%(n)s s ago",
    "%(n)s分钟前": "%(n)s min ago",
    "%(n)s小时前": "%(n)s h ago",
    "凭证落后 %(n)s 版": "%(n)s credential versions behind",
    "待上传 %(n)s 条": "%(n)s events buffered",
    "%(m)s 分钟": "%(m)s min",
    "暂无设备告警": "No device alerts",
    "未处理告警": "Open alerts",
    "已升级": "Escalated",
    "平均确认时长（7天）": "Mean time to acknowledge (7 days)",
    "平均修复时长（7天）": "Mean time to repair (7 days)",
    "我负责的楼宇": "My buildings",
    "在楼人数": "Residents inside",
    "今日晚归": "Late returns today",
    "%(n)s天未出现": "Not seen for %(n)s days",
    "晚归记录": "Late returns",
    "%(n)s天未出现的住宿生": "Residents not seen for %(n)s days",
    "安全告警（黑名单、克隆卡、旧卡、防潜回）": "Security alerts (blacklist, clones, old cards, anti-passback)",
    "闸机状态与近5分钟进出": "Gates: state and in/out over the last 5 minutes",
    "进 %(i)s · 出 %(o)s": "in %(i)s · out %(o)s",
    "暂无安全告警": "No security alerts",
    "回看与回放": "Look back and replay",
    "从": "From",
    "查看": "Show",
    "播放/暂停": "Play / pause",
    "请填写完整的起止时间": "Please enter both the start and the end",
    "一次最多回看 7 天": "At most 7 days at a time",
    "次/%(n)s分钟": "taps per %(n)s min",
    "共 %(n)s 次刷卡；拖动滑块或点“播放”回放": "%(n)s taps; drag the slider or press “Play” to replay",
    "通过 %(a)s · 拒绝 %(d)s": "allowed %(a)s · denied %(d)s",
    "回放至 %(t)s": "Replay at %(t)s",
    "防潜回违规": "Anti-passback violation",
    "进入未处理": "Open since",
    "首次发生或确认失效的时间（计算确认时长和升级）": "When it first happened or its acknowledgement lapsed (for time to acknowledge and escalation)",
    "条件消除于": "Condition cleared at",
    "设备恢复心跳或故障消除的时间；再次发生即“复发”": "When the device was heard again or the fault cleared; happening again is a re-fire",
    "确认时间": "Acknowledged at",
    "确认说明": "Acknowledgement comment",
    "解决时间": "Resolved at",
    "处理结果": "Resolution",
    "升级级别": "Escalation level",
    "升级时间": "Escalated at",
    "确认失效次数": "Lapsed acknowledgements",
    "复发时间": "Re-fire times",
    "近期复发的时间戳（判断抖动）": "Recent re-fire timestamps (for flap detection)",
    "抖动中": "Flapping",
    "产生": "Raised",
    "条件消除": "Condition cleared",
    "确认失效（复发）": "Acknowledgement lapsed (re-fired)",
    "判定为抖动，抑制通知": "Flapping: notifications suppressed",
    "恢复稳定": "Stable again",
    "超时未确认，已升级": "Not acknowledged in time: escalated",
    "指派": "Assign",
    "开维修单": "Open repair ticket",
    "动作": "Action",
    "说明": "Comment",
    "用时（秒）": "Took (s)",
    "确认：自进入未处理起；解决：自首次发生起": "Acknowledge: since opened; resolve: since first occurrence",
    "告警处理记录": "Alert timeline entry",
    "非人为（厂商免费维修）": "Non-human (vendor repairs free of charge)",
    "人为损坏（责任人按市价赔偿）": "Human damage (responsible person pays the market price)",
    "故障描述": "Fault description",
    "维修厂商": "Vendor",
    "责任人": "Responsible person",
    "开单人": "Opened by",
    "开单时间": "Opened at",
    "维修单": "Repair ticket",
    "已保存": "Saved",
    "告警不存在": "No such alert",
    "无权处理此类告警": "You may not handle this kind of alert",
    "告警已解决，不能再处理": "The alert is resolved and cannot be changed",
    "确认告警必须填写说明（看到了什么、打算怎么处理）": "Acknowledging needs a comment (what you saw, what you will do)",
    "告警已被确认": "The alert is already acknowledged",
    "只能指派给有权处理此告警的操作员": "Assign only to an operator who may handle this alert",
    "解决告警必须填写处理结果": "Resolving needs a resolution",
    "维修单由网信中心开具": "Repair tickets are opened by NIC",
    "此告警没有对应设备，不能开维修单": "This alert has no device: no repair ticket",
    "请填写故障描述": "Please describe the fault",
    "请选择故障原因：人为或非人为": "Choose the cause: human or non-human",
    "非人为故障由厂商免费维修：请填写维修厂商": "Non-human faults are repaired free by the vendor: enter the vendor",
    "人为损坏须填写责任人的学工号（系统中找不到此学工号）": "Human damage needs the responsible person's number (this number is not on record)",
    "赔偿金额须为数字（元）": "The charge must be a number (yuan)",
    "赔偿金额须按市价填写，大于 0 元": "The charge is the market price and must be above 0 yuan",
    "已开维修单 #%(n)s": "Repair ticket #%(n)s opened",
    "无权查看此楼宇": "You may not see this building",
    "损坏设备赔偿": "Device damage charge",
    "设备赔偿无卡": "No card for device damage charges",
    "告警处理": "Alert",
    "返回值班台": "Back to the desk",
    "确认失效 %(n)s 次": "acknowledgement lapsed %(n)s times",
    "抖动中（已抑制通知）": "flapping (notifications suppressed)",
    "首次 / 最近": "First / last",
    "说明（必填）": "Comment (required)",
    "确认告警": "Acknowledge",
    "开维修单并关闭告警": "Open a repair ticket and close the alert",
    "故障原因": "Cause",
    "维修厂商（非人为）": "Vendor (non-human)",
    "责任人学工号（人为）": "Responsible person's number (human)",
    "赔偿金额，按市价（元，人为）": "Charge at market price (yuan, human)",
    "处理结果（必填）": "Resolution (required)",
    "标记为已解决": "Mark resolved",
    "描述": "Description",
    "厂商 / 责任人": "Vendor / responsible",
    "处理记录": "Timeline",
    "宿舍门禁实时": "Dorm doors — live",
    "门": "Door",
    "您没有负责的楼宇，请联系网信中心分配。": "No buildings are assigned to you; ask NIC.",
    "宿舍楼实时概况（仅限本人负责的楼宇）": "A dorm building's live figures (own buildings only)",
    "设备告警": "Device alerts",
    "到": "To",
    "网信中心设备值班台": "NIC device desk",
    "结束时间必须晚于开始时间": "The end must be later than the start",
    "确认人": "Acknowledged by",
    "处理人": "Assignee",
    "解决人": "Resolved by",
    "复发": "Re-fired",
    "确认": "Acknowledge",
    "解决": "Resolve",
    "赔偿金额（元）": "Charge (yuan)",
}

EN.update(
    {
        # Audit
        "审计": "Audit",
        "操作员账号": "Operator account",
        "操作": "Action",
        "对象类型": "Object type",
        "对象": "Object",
        "依据": "Basis",
        "内容": "Details",
        "审计记录": "Audit log",
        "%(action)s已办理：%(card)s": "Done: %(action)s — %(card)s",
        # Cardholders and cards
        "在校/在职": "Enrolled/employed",
        "已毕业": "Graduated",
        "已退学": "Withdrawn",
        "已退休": "Retired",
        "已离校/离职": "Left",
        "班级": "Class",
        "职务/职称": "Position/title",
        "在校状态": "Enrolment status",
        "预计毕业日期": "Expected graduation date",
        "学生：预计毕业日期；延期毕业时由教务处名单延长": "Students: expected graduation date; extended by the Academic Affairs list if graduation"
        " is deferred",
        "照片摘要": "Photo hash",
        "审批人/审批单位": "Approver / approving unit",
        "办理依据": "Basis (form or letter reference)",
        "管理部门": "Managing department",
        "替换的旧卡": "Replaces card",
        "日期格式应为 YYYY-MM-DD": "Date must be in YYYY-MM-DD format",
        # Card desk forms
        "申请表编号、函件编号或名单名称（R-CARD-9：谁审批，谁负责）": "Application form number, letter number or list name (R-CARD-9: whoever approves is"
        " accountable)",
        "卡务": "Card services",
        "发卡": "Issue card",
        "解挂": "Found again",
        "补卡": "Replacement",
        "信息变更换卡": "Reissue after identity change",
        "列入黑名单": "Blacklist",
        "移出黑名单": "Remove from blacklist",
        "注销": "Cancel",
        "注销原因": "Reason for cancelling",
        "仅注销此卡": "Cancel this card only",
        "退学": "Withdrawal",
        "毕业": "Graduation",
        "离校/离职": "Leaving",
        "延期": "Extend",
        "新的有效期至": "New expiry date",
        "补卡 / 换卡": "Replacement / reissue",
        "新卡卡号（UID）": "New card UID",
        "把空白卡放在发卡器上读取，或手工输入": "Place the blank card on the enrolment reader, or type the UID in",
        "收费（元）": "Fee (CNY)",
        "留空按收费标准收取": "Leave blank to charge the standard fee",
        "收费窗口": "Cashier window",
        "变更后姓名": "New name",
        "变更后身份证号": "New citizen ID",
        "留空按收费标准 %(fee)s 元收取；上限 %(cap)s 元": "Leave blank to charge the standard fee of %(fee)s CNY; cap %(cap)s CNY",
        "卡号（UID）": "Card UID",
        "把空白卡放在发卡器上读取（campuscard enroll），或手工输入": "Place the blank card on the enrolment reader (campuscard enroll), or type the UID in",
        "按持卡人类别": "By cardholder kind",
        "管理部门（临时卡）": "Managing department (temporary card)",
        "有效期至（临时卡必填）": "Valid until (required for temporary cards)",
        "确定办理": "Confirm",
        # List import
        "名单类型": "List type",
        "学生名单（教务处）": "Student list (Academic Affairs)",
        "教职工名单（人事处）": "Staff list (Human Resources)",
        "名单文件": "List file",
        "CSV 或 XLSX，表头为中文：姓名、学号、身份证号、学系、班级…": "CSV or XLSX with Chinese column headers: 姓名 (name), 学号 (student number),"
        " 身份证号 (citizen ID), 学系 (department), 班级 (class)…",
        "照片包（可选）": "Photo archive (optional)",
        "zip，文件名为学号/工号，如 2026CS00001.jpg": "zip; file names are student/staff numbers, e.g. 2026CS00001.jpg",
        "导入名单": "Import list",
        "已开始导入，请稍候": "Import started; please wait",
        "导入预览": "Import preview",
        "名单类型应为 student（学生）或 staff（教职工）": "List type must be student or staff",
        "系统中没有名为“%(name)s”的部门/学系，请先由网信中心添加": "There is no department named “%(name)s”; ask NIC to add it first",
        "编号 %(number)s 已属于另一类持卡人（%(kind)s），不能作为%(list)s导入": "Number %(number)s already belongs to a different kind of cardholder (%(kind)s) and"
        " cannot be imported as %(list)s",
        "照片包中没有 %(number)s 的照片（文件名应为学号/工号）": "No photo for %(number)s in the photo archive (file names must be student/staff numbers)",
        "这份名单已经导入过了（%(at)s）": "This list was already imported (%(at)s)",
        "%(kind)s名单 %(file)s（导入批次 %(id)s）": "%(kind)s list %(file)s (import batch %(id)s)",
        "已预览，待确认": "Previewed, awaiting confirmation",
        "已导入": "Imported",
        "学生名单": "Student list",
        "教职工名单": "Staff list",
        "文件名": "File name",
        "文件摘要": "File hash",
        "预览时间": "Previewed at",
        "导入时间": "Imported at",
        "行数": "Rows",
        "导入计划": "Import plan",
        "名单导入": "List import",
        "新增 %(c)s，更新 %(u)s，无变化 %(n)s，拒绝 %(r)s": "New %(c)s, updated %(u)s, unchanged %(n)s, rejected %(r)s",
        "被拒绝的行不会导入；请修正后重新导入这些行。": "Rejected rows are not imported; fix them and import them again.",
        "先预览：系统会列出将新增、更新、拒绝的行，数据库不做任何更改；确认后才导入。": "Preview first: the system lists the rows to be added, updated and rejected without"
        " changing the database; nothing is imported until you confirm.",
        "确认导入": "Confirm import",
        "完成": "Done",
        "拒绝的行": "Rejected rows",
        "行": "Row",
        "列": "Column",
        "值": "Value",
        "将更新（前 20 行）": "To be updated (first 20 rows)",
        "正在预览…": "Previewing…",
        "预览": "Preview",
        # Card history and fees
        "卡务记录": "Card action log",
        "原状态": "Previous status",
        "新状态": "New status",
        "新卡": "New card",
        "挂失补卡": "Replacement after loss",
        "损坏补卡": "Replacement for damage",
        "补卡工本费（元）": "Replacement fee (CNY)",
        "物价部门核定上限（元）": "Price authority's cap (CNY)",
        "收费标准": "Fee policy",
        "收费项目": "Fee item",
        "金额（元）": "Amount (CNY)",
        "收费操作员": "Charged by",
        "收费时间": "Charged at",
        "收费流水": "Fee ledger",
        "凭证变更": "Credential change",
        "卡务动态": "Card activity",
        "导出对账表（XLSX）": "Export reconciliation (XLSX)",
        "导出明细（CSV）": "Export details (CSV)",
        # Photo checks (colour names are inserted mid-sentence, hence lower case)
        "黑色": "black",
        "白色": "white",
        "灰色": "grey",
        "很浅的蓝色（接近白色）": "very pale blue (almost white)",
        "很深的蓝色（接近黑色）": "very dark blue (almost black)",
        "蓝色": "blue",
        "红色": "red",
        "橙色": "orange",
        "黄色": "yellow",
        "绿色": "green",
        "青绿色": "cyan",
        "紫色": "purple",
        "粉红色": "pink",
        "照片文件像素过多，无法读取；请上传 295×421 像素的证件照": "The photo has too many pixels to read; please upload a 295×421-pixel ID photo",
        "无法读取照片文件（不是有效的 JPEG 或 PNG 图片），请重新导出照片": "Cannot read the photo (not a valid JPEG or PNG image); please export it again",
        "照片尺寸为 %(width)d×%(height)d 像素，应为 %(req_width)d×%(req_height)d 像素（宽×高）": "The photo is %(width)d×%(height)d pixels; it must be %(req_width)d×%(req_height)d"
        " pixels (width×height)",
        "；宽高颠倒，照片可能被横置了": "; width and height are swapped, so the photo may be sideways",
        "照片未记录分辨率，应为 %(dpi)d dpi；请在图片软件中设置为 %(dpi)d dpi 后重新保存": "The photo has no resolution recorded; it must be %(dpi)d dpi. Set it to %(dpi)d dpi in"
        " an image editor and save it again",
        "照片分辨率为 %(shown)s dpi，应为 %(dpi)d dpi": "The photo resolution is %(shown)s dpi; it must be %(dpi)d dpi",
        "照片背景不是均匀的蓝色（边缘只有 %(share)d%% 为蓝色），请使用纯蓝底证件照": "The photo background is not evenly blue (only %(share)d%% of the edge is blue); please"
        " use an ID photo on a plain blue background",
        "照片背景不是蓝色（检测到的主色接近%(colour)s），请使用蓝底证件照": "The photo background is not blue (the main colour detected is close to %(colour)s);"
        " please use an ID photo on a blue background",
        "不是照片文件（只接受 .jpg、.jpeg、.png）": "Not a photo file (only .jpg, .jpeg and .png are accepted)",
        "文件名中没有学号或工号": "The file name has no student or staff number",
        "文件过大（超过 %(mb)d MB）": "File too large (over %(mb)d MB)",
        "编号 %(number)s 与 %(other)s 重复": "Number %(number)s duplicates %(other)s",
        "无法读取该文件（可能已加密或已损坏）": "Cannot read this file (it may be encrypted or damaged)",
        "无法读取压缩包 %(name)s：%(error)s": "Cannot read the archive %(name)s: %(error)s",
        "%(name)s 不是文件夹，也不是 .zip 压缩包": "%(name)s is neither a folder nor a .zip archive",
        # Card rules (services)
        "卡号（UID）格式不正确：应为 8–20 位十六进制数字，读到的是“%(uid)s”": "Invalid card UID: it must be 8–20 hexadecimal digits, but “%(uid)s” was read",
        "必须填写办理依据（申请表编号、函件编号或名单）": "A basis is required (application form number, letter number or list)",
        "您没有办理此卡务的权限：校园卡由网信中心办理，临时卡也可由其审批部门办理": "You may not perform this card action: campus cards are handled by NIC; temporary cards"
        " also by their approving department",
        "该卡（UID %(uid)s）已绑定给 %(number)s %(name)s，不能重复绑定": "This card (UID %(uid)s) is already bound to %(number)s %(name)s and cannot be bound"
        " again",
        "必须填写审批人或审批单位（谁审批，谁负责）": "An approver or approving unit is required (whoever approves is accountable)",
        "学生卡只能发给学生": "Student cards can only be issued to students",
        "教工卡只能发给教职工": "Staff cards can only be issued to staff",
        "临时卡必须由管理部门审批并盖章，请选择审批（管理）部门": "A temporary card must be approved and stamped by its managing department; please choose"
        " the approving (managing) department",
        "临时卡必须填写约定的有效期": "A temporary card needs the agreed expiry date",
        "有效期必须晚于当前时间": "The expiry must be in the future",
        "%(number)s 的状态为“%(status)s”，不能发卡": "%(number)s has status “%(status)s”; no card can be issued",
        "%(number)s 已有一张可用的卡（UID %(uid)s）。一人一卡：遗失或损坏请办理补卡": "%(number)s already has a usable card (UID %(uid)s). One person, one card: if it is lost"
        " or damaged, issue a replacement",
        "发卡冲突：该卡或该持卡人刚刚在另一处办理，请刷新后重试": "Issue conflict: this card or cardholder was just handled elsewhere; refresh and try again",
        "只有正常状态的卡可以挂失（此卡当前为“%(status)s”）": "Only an active card can be reported lost (this card is “%(status)s”)",
        "只有已挂失的卡可以解挂（此卡当前为“%(status)s”）": "Only a lost card can be found again (this card is “%(status)s”)",
        "此卡已“%(status)s”，不能再补卡；请为持卡人办理新卡": "This card is “%(status)s” and cannot be replaced; issue the cardholder a new card",
        "收费金额不能为负数": "The fee cannot be negative",
        "收费 %(fee)s 元超过物价部门核定的上限 %(cap)s 元": "The fee of %(fee)s CNY exceeds the price authority's cap of %(cap)s CNY",
        "信息变更换卡须填写变更后的身份信息": "A reissue after identity change needs the new identity details",
        "不能变更这些字段：%(fields)s": "These fields cannot be changed: %(fields)s",
        "身份证号无效（校验位或出生日期错误）": "Invalid citizen ID (wrong check digit or date of birth)",
        "此卡已在黑名单中": "This card is already blacklisted",
        "此卡不在黑名单中": "This card is not blacklisted",
        "此卡已“%(status)s”，不能延期": "This card is “%(status)s” and cannot be extended",
        "教工卡长期有效，无需延期": "Staff cards do not expire; no extension needed",
        "新的有效期必须晚于当前有效期": "The new expiry must be later than the current one",
        "此卡已“%(status)s”，无需注销": "This card is already “%(status)s”; no need to cancel it",
        "退休教职工继续使用校园卡，不注销（第十三条）": "Retired staff keep using their campus card; it is not cancelled (Article 13)",
        # Spreadsheet reading
        "文件是空的": "The file is empty",
        "不支持的文件类型“%(suffix)s”，请上传 .xlsx 或 .csv 文件": "Unsupported file type “%(suffix)s”; please upload an .xlsx or .csv file",
        "文件扩展名是 %(suffix)s，但内容不是 Excel 工作簿；请在 Excel 中重新另存为 .xlsx": "The file extension is %(suffix)s but the content is not an Excel workbook; please save"
        " it again as .xlsx in Excel",
        "无法识别文件的文字编码；请在 Excel 中另存为“CSV UTF-8”或 .xlsx 格式": "Cannot detect the text encoding; in Excel, save as “CSV UTF-8” or .xlsx",
        "CSV 文件格式有误（第 %(row)d 行）：%(error)s": "Malformed CSV file (line %(row)d): %(error)s",
        "服务器未安装 Excel 读取组件，请上传 CSV 文件": "The server has no Excel reader installed; please upload a CSV file",
        "Excel 文件中没有工作表": "The Excel file has no worksheet",
        "无法读取 Excel 文件（%(error)s）；请确认文件未损坏、未加密": "Cannot read the Excel file (%(error)s); make sure it is not damaged or encrypted",
        "文件中没有数据": "The file has no data",
        "“%(first)s”和“%(second)s”两列都表示“%(field)s”，请只保留一列": "Columns “%(first)s” and “%(second)s” both mean “%(field)s”; keep only one",
        "缺少必需的列“%(column)s”（可用的列名：%(aliases)s）": "Required column “%(column)s” is missing (accepted names: %(aliases)s)",
        "“%(column)s”不能为空": "“%(column)s” cannot be empty",
        "“%(column)s”被 Excel 当作数字保存，超过 15 位的数字已丢失；请把该列设置为“文本”格式后重新填写": "Excel stored “%(column)s” as a number, so digits beyond the 15th were lost; format the"
        " column as Text and enter the values again",
        "%(column)s %(value)s 与第 %(row)d 行重复": "%(column)s %(value)s duplicates row %(row)d",
        "身份证号与第 %(row)d 行重复": "Citizen ID duplicates row %(row)d",
        "身份证号应为18位": "Citizen ID must be 18 characters",
        "身份证号只能由数字组成，最后一位可以是 X": "Citizen ID may contain only digits; the last one may be X",
        "身份证号中的出生日期无效": "Invalid date of birth in citizen ID",
        "身份证号校验位错误": "Wrong check digit in citizen ID",
    }
)

EN.update(
    {
        # Personal-data queries (R-SEC-2): request → leader approves → NIC reviews → time-limited grant
        "个人数据查询": "Personal-data queries",
        "个人数据": "Personal data",
        "个人数据查询申请": "Personal-data request",
        "查询申请": "Request",
        "待领导审批": "Awaiting the leader's approval",
        "待网信中心复核": "Awaiting NIC review",
        "未通过": "Rejected",
        "已授权": "Granted",
        "授权已过期": "Grant expired",
        "已撤销": "Revoked",
        "申请人": "Requester",
        "查询目的": "Purpose",
        "查询对象": "Persons",
        "书面依据文件名": "Written basis (file name)",
        "书面依据摘要": "Written basis (SHA-256)",
        "书面依据类型": "Written basis (type)",
        "书面依据大小（字节）": "Written basis (bytes)",
        "书面依据": "Written basis",
        "审批领导": "Approving leader",
        "审批时间": "Approved at",
        "审批意见": "Leader's comment",
        "复核人": "NIC reviewer",
        "复核时间": "Reviewed at",
        "复核意见": "Reviewer's comment",
        "授权截止": "Grant ends",
        "撤销人": "Revoked by",
        "撤销时间": "Revoked at",
        "撤销原因": "Reason for revoking",
        "申请时间": "Filed at",
        "只有分管领导可以审批个人数据查询申请": "Only the responsible leader may approve a personal-data request",
        "不能审批自己提交的申请": "You cannot approve your own request",
        "只能审批本人分管部门的申请": "You may approve only requests from the department you oversee",
        "只有网信中心可以复核个人数据查询申请": "Only NIC may review a personal-data request",
        "不能复核自己提交的申请": "You cannot review your own request",
        "申请不存在": "No such request",
        "只有操作员可以提交个人数据查询申请": "Only an operator may file a personal-data request",
        "请填写查询目的（管理、审计或监督的具体事由）": "Please state the purpose (the management, audit or supervision matter)",
        "查询目的不能超过 500 字": "The purpose may be at most 500 characters",
        "请填写要查询的人员学工号": "Please give the student/staff numbers of the persons",
        "一次申请最多 %(n)d 人": "At most %(n)d persons per request",
        "系统中找不到这些学工号：%(numbers)s": "These student/staff numbers are not in the system: %(numbers)s",
        "只能审批待审批的申请（当前：%(s)s）": "Only a request awaiting approval can be approved (now: %(s)s)",
        "此申请已处理，不能再驳回（当前：%(s)s）": "This request has been dealt with and can no longer be rejected (now: %(s)s)",
        "驳回须填写理由": "A rejection needs a reason",
        "须先经分管领导审批，网信中心才能复核": "The responsible leader must approve the request before NIC can review it",
        "此申请不在待复核状态（当前：%(s)s）": "This request is not awaiting review (now: %(s)s)",
        "授权时长须为整数小时": "The grant's length must be a whole number of hours",
        "授权时长须在 1 到 %(max)d 小时之间（最长 7 天）": "The grant's length must be between 1 and %(max)d hours (7 days at most)",
        "只有网信中心可以撤销授权": "Only NIC may revoke a grant",
        "此申请已结束，不能撤销（当前：%(s)s）": "This request has ended and cannot be revoked (now: %(s)s)",
        "撤销须填写原因": "Revoking needs a reason",
        "您对此人的查询授权已过期；如仍需查看，请重新提交申请。": "Your grant for this person has expired; file a new request if you still need to look.",
        "您的查询申请尚未完成分管领导审批和网信中心复核，暂不能查看。": "Your request has not yet been approved by the leader and reviewed by NIC; you cannot"
        " look yet.",
        "您对此人的查询授权已被网信中心撤销。": "NIC has revoked your grant for this person.",
        "您对此人的查询申请未获通过。": "Your request for this person was rejected.",
        "没有有效的查询授权：查看个人数据须先提交书面申请，经分管领导审批、网信中心复核。": "No active grant: personal data is shown only after a written request approved by the"
        " responsible leader and reviewed by NIC.",
        "无权查看此申请": "You may not see this request",
        "书面依据文件缺失，请联系网信中心": "The written basis file is missing; please contact NIC",
        "请上传书面依据（PDF、JPG 或 PNG 文件）": "Please upload the written basis (a PDF, JPG or PNG file)",
        "申请已提交，等待分管领导审批": "Request filed; it now awaits the responsible leader's approval",
        "书面依据文件不能超过 %(mb)d MB": "The written basis may be at most %(mb)d MB",
        "书面依据只接受 PDF、JPG 或 PNG 文件（按文件内容检查）": "The written basis must be a PDF, JPG or PNG file (checked by its content)",
        "依据查询申请 #%(n)s 查看，授权至 %(until)s。本次查看已记入审计。": "Shown under request #%(n)s, granted until %(until)s. This view has been audited.",
        "查看持卡人的身份证号、手机号等个人数据，须提交书面申请，经分管领导审批、网信中心复核后，在授权期限内查看；每次查看都记入审计。": "A cardholder's personal data (citizen ID, phone…) is shown only after a written request"
        " has been approved by the responsible leader and reviewed by NIC, and only while the"
        " grant lasts; every view is audited.",
        "提交查询申请": "File a request",
        "待我审批": "Awaiting my approval",
        "人": "persons",
        "待我复核": "Awaiting my review",
        "生效中的授权": "Grants in force",
        "我的申请": "My requests",
        "人数": "Persons",
        "还没有提交过申请。": "You have not filed any request yet.",
        "提交个人数据查询申请": "File a personal-data request",
        "查询目的（管理、审计或监督的具体事由）": "Purpose (the management, audit or supervision matter)",
        "查询对象的学工号（每行一个，或用逗号分隔）": "Student/staff numbers of the persons (one per line, or separated by commas)",
        "书面依据（盖章的申请函或审批表扫描件）": "Written basis (a scan of the stamped letter or approval form)",
        "提交申请": "File the request",
        "PDF、JPG 或 PNG，不超过 %(max_mb)s MB。": "PDF, JPG or PNG, at most %(max_mb)s MB.",
        "无权查看个人数据": "Personal data not shown",
        "本次查看请求已记入审计。": "This attempt has been audited.",
        "网信中心复核": "NIC review",
        "撤销": "Revoke",
        "查看个人数据": "View personal data",
        "每次查看都记入审计。": "Every view is audited.",
        "分管领导审批": "Leader's approval",
        "批准": "Approve",
        "授权时长（小时）": "Grant length (hours)",
        "复核通过并授权": "Review and grant",
        "驳回": "Reject",
        "驳回理由（必填）": "Reason (required)",
        "驳回申请": "Reject the request",
        "撤销原因（必填）": "Reason (required)",
        "撤销申请/授权": "Revoke the request/grant",
    }
)

EN.update(
    {
        # Backups (R-SEC-4): campuscard backup / restore
        "备份过大：超出加密分块数上限": "Backup too large: more encrypted chunks than allowed",
        "这不是校园一卡通的备份文件（文件头不对）": "This is not a campus card backup file (wrong header)",
        "备份文件已损坏或被篡改（文件头不对）": "The backup file is damaged or was tampered with (bad header)",
        "备份密钥不对（或文件头已损坏）：这个备份不是用当前的备份密钥制作的": "Wrong backup key (or a damaged header): this backup was not made with the current backup key",
        "不支持的备份格式版本 %(version)d": "Unsupported backup format version %(version)d",
        "备份内容不完整（成员数据被截断）": "The backup is incomplete (member data cut off)",
        "备份文件不完整：在第 %(n)d 块处被截断": "The backup file is incomplete: cut off at chunk %(n)d",
        "备份文件已损坏或被篡改：第 %(n)d 块校验失败": "The backup file is damaged or was tampered with: chunk %(n)d fails its check",
        "备份文件已损坏或被篡改：末尾有多余的数据": "The backup file is damaged or was tampered with: extra data at the end",
        "本系统的审计密钥 AUDIT_HMAC_KEY 与制作备份的系统不同：恢复后审计链将无法校验。请设置源系统的 AUDIT_HMAC_KEY 再恢复（确实遗失时可加 --accept-other-audit-key）": "This system's audit key AUDIT_HMAC_KEY differs from the one of the system that made the backup: the restored audit chain would not verify. Set the source system's AUDIT_HMAC_KEY and restore again (if it is truly lost, add --accept-other-audit-key)",
        "%(path)s 已存在：备份不会覆盖已有文件": "%(path)s exists: a backup never overwrites a file",
        "目录 %(path)s 不存在": "The directory %(path)s does not exist",
        "找不到备份文件 %(path)s": "Backup file %(path)s not found",
        "只能恢复到空系统：数据库表 %(table)s 里已有数据。请新建一个空数据库（可先运行 campuscard migrate）再恢复；没有改动任何数据": "A backup restores only into an empty system: table %(table)s has rows. Create an empty database (you may run campuscard migrate first) and restore into it; nothing was changed",
        "只能恢复到空系统：照片目录 %(path)s 不是空的；没有改动任何数据": "A backup restores only into an empty system: the photo folder %(path)s is not empty; nothing was changed",
        "备份来自 %(source)s 数据库，本系统用的是 %(target)s：不能恢复": "The backup comes from a %(source)s database, this system uses %(target)s: cannot restore",
        "备份来自更新的版本（本系统没有迁移 %(migration)s）：请先升级本系统再恢复": "The backup comes from a newer version (this system lacks migration %(migration)s): upgrade first, then restore",
        "目标数据库已迁移到比备份更新的状态（%(migration)s）：请在新建的空数据库上恢复，之后再运行 campuscard migrate": "The target database is migrated further than the backup (%(migration)s): restore into a new empty database, then run campuscard migrate",
        "校验和不符：成员 %(name)s 与清单不一致": "Checksum mismatch: member %(name)s does not match the manifest",
        "备份文件在校验之后被替换了，已停止；没有改动任何数据": "The backup file was replaced after it was checked; stopped, nothing was changed",
        "备份内容的格式不对：未知成员 %(name)s": "Bad backup layout: unknown member %(name)s",
        "校验和不符：照片 %(name)s 的内容与文件名不一致": "Checksum mismatch: the content of photo %(name)s does not match its name",
        "找不到 %(program)s：请安装与数据库服务器同版本的 PostgreSQL 客户端": "%(program)s not found: install the PostgreSQL client of the server's version",
        "不支持备份这种数据库：%(vendor)s": "Backups of this database are not supported: %(vendor)s",
        "pg_dump 失败：%(error)s": "pg_dump failed: %(error)s",
        "pg_restore 失败，数据库未改动：%(error)s": "pg_restore failed, the database is unchanged: %(error)s",
        "备份中的 SQLite 数据库已损坏，数据库未改动": "The SQLite database in the backup is damaged; the database is unchanged",
        "备份内容的格式不对": "Bad backup layout",
        "备份内容不完整：没有清单": "The backup is incomplete: no manifest",
        "备份清单无法解析": "The backup manifest cannot be read",
        "备份内容的格式不对：数据库成员与清单中的数据库类型不符": "Bad backup layout: the database member does not match the manifest's database vendor",
        "备份清单过大": "The backup manifest is too large",
        "备份内容的格式不对：结束标记之后还有数据": "Bad backup layout: data after the end marker",
        "备份内容的格式不对：成员名不是 UTF-8": "Bad backup layout: a member name is not UTF-8",
        "备份内容的格式不对：清单之后还有成员": "Bad backup layout: members after the manifest",
        "备份内容的格式不对：成员 %(name)s 重复": "Bad backup layout: member %(name)s appears twice",
        '备份密钥应为 64 位十六进制数（32 字节），可用 python -c "import secrets; print(secrets.token_hex(32))" 生成': 'The backup key must be 64 hex digits (32 bytes); make one with python -c "import secrets; print(secrets.token_hex(32))"',
        "生产环境必须设置备份密钥 CAMPUSCARD_BACKUP_KEY（或 CAMPUSCARD_BACKUP_KEY_FILE）": "Production needs the backup key CAMPUSCARD_BACKUP_KEY (or CAMPUSCARD_BACKUP_KEY_FILE)",
        "未设置备份密钥：请设置 CAMPUSCARD_BACKUP_KEY 或 CAMPUSCARD_BACKUP_KEY_FILE 为制作备份时所用的密钥": "No backup key: set CAMPUSCARD_BACKUP_KEY or CAMPUSCARD_BACKUP_KEY_FILE to the key the backup was made with",
        "备份完成：%(path)s（%(size)d 字节，%(photos)d 张照片，SHA-256 %(sha)s）": "Backup written: %(path)s (%(size)d bytes, %(photos)d photos, SHA-256 %(sha)s)",
        "照片文件已损坏（内容与摘要不符），未放入备份：%(name)s": "Photo file damaged (content does not match its digest), left out of the backup: %(name)s",
        "恢复完成：数据库（%(vendor)s，备份于 %(at)s）和 %(photos)d 张照片": "Restored: the database (%(vendor)s, backed up at %(at)s) and %(photos)d photos",
        "本系统比备份新：请运行 campuscard migrate（%(count)d 个迁移未应用）": "This system is newer than the backup: run campuscard migrate (%(count)d migrations not applied)",
        "数据已恢复，但审计链校验失败（记录 #%(id)s）：请确认 AUDIT_HMAC_KEY 与源系统一致": "The data is restored, but the audit chain fails to verify (record #%(id)s): check that AUDIT_HMAC_KEY is the source system's",
        "审计链完整：%(count)d 条记录": "Audit chain intact: %(count)d records",
        "备份完好：%(members)d 个成员校验无误（%(vendor)s，制作于 %(at)s）": "Backup intact: %(members)d members verified (%(vendor)s, made at %(at)s)",
    }
)


EN.update(
    {
        # accountability (issue 6)
        "链式校验码": "Chain MAC",
        "审计链头": "Audit chain head",
        "审计记录至少保留 %(days)s 天：只能清除 %(limit)s 之前的记录。": "Audit records are kept at least %(days)s days: only records before %(limit)s can be "
        "purged.",
        "审计链校验失败（记录 #%(id)s），拒绝清除；请先调查。": "The audit chain does not verify (record #%(id)s); nothing purged — investigate first.",
        "个人信息保护：原值不显示；留空则保持不变": "Personal data protection: the value on record is not shown; leave empty to keep it",
        "账号已锁定": "Account locked",
        "登录失败次数过多，账号已暂时锁定": "Too many failed logins: the account is locked for now",
        "为保护账号安全，该账号在此地址的登录已暂停（%(wait)s，时:分:秒）。如需立即解锁，请联系网信中心管理员。": "To protect the account, logins to it from this address are paused (%(wait)s, h:mm:ss). "
        "To unlock it now, contact an NIC administrator.",
        "返回登录页": "Back to the login page",
        "只有网信中心、人事处（教职工名单）和教务处（学生名单）可以导入或查看名单": "Only NIC, HR (staff lists) and Academic Affairs (student lists) may import or read "
        "lists",
    }
)


EN.update(
    {
        # backups include the personal-data basis files
        "校验和不符：文件 %(name)s 的内容与文件名不一致": "Checksum mismatch: the content of file %(name)s does not match its name",
        "只能恢复到空系统：书面依据目录 %(path)s 不是空的；没有改动任何数据": "A backup restores only into an empty system: the basis file folder %(path)s is not empty; "
        "nothing was changed",
        "书面依据文件已损坏（内容与摘要不符），未放入备份：%(name)s": "Basis file damaged (content does not match its digest), left out of the backup: %(name)s",
        "备份完成：%(path)s（%(size)d 字节，%(photos)d 张照片，%(basis)d 个书面依据文件，SHA-256 %(sha)s）": "Backup written: %(path)s (%(size)d bytes, %(photos)d photos, %(basis)d basis files, "
        "SHA-256 %(sha)s)",
        "恢复完成：数据库（%(vendor)s，备份于 %(at)s）、%(photos)d 张照片和 %(basis)d 个书面依据文件": "Restored: the database (%(vendor)s, backed up at %(at)s), %(photos)d photos and %(basis)d "
        "basis files",
    }
)
EN.update(
    {
        # the 403/404 pages and the workbench of roles without a live desk
        "无权访问": "Access denied",
        "您的角色没有访问此页面的权限。如需权限，请联系网信中心。": "Your role may not open this page. Ask the Network & Information Centre for access.",
        "返回我的工作台": "Back to my workbench",
        "页面不存在": "Page not found",
        "您要找的页面或记录不存在，或已被删除。": "The page or record you are looking for does not exist, or has been deleted.",
        "我的工作": "My work",
    }
)

PO = Path(__file__).resolve().parent.parent / "ops" / "locale" / "en" / "LC_MESSAGES" / "django.po"

_KEYWORD = re.compile(r'^(msgctxt|msgid_plural|msgid|msgstr(?:\[\d+\])?) "(.*)"$')
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t"}


def _unquote(s: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(0)), s)


def _quote(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")


def _fields(lines: list[str]) -> dict[str, str]:
    """msgid/msgstr/... of one entry, with multi-line strings joined and unescaped."""
    fields: dict[str, str] = {}
    key = None
    for line in lines:
        match = _KEYWORD.match(line)
        if match:
            key = match.group(1)
            fields[key] = _unquote(match.group(2))
        elif key and line.startswith('"') and line.endswith('"'):
            fields[key] += _unquote(line[1:-1])
    return fields


def _fill_entry(block: str, missing: list[str]) -> str:
    lines = block.split("\n")
    if any(line.startswith("#~") for line in lines):
        return block  # obsolete entry
    fields = _fields(lines)
    if "msgid" not in fields:
        return block
    msgid = fields["msgid"]
    flags = [line for line in lines if line.startswith("#,")]
    if not msgid:  # header: drop its fuzzy flag so msgfmt uses it
        return "\n".join(_drop_fuzzy(lines))
    strs = [v for k, v in fields.items() if k.startswith("msgstr")]
    fuzzy = any("fuzzy" in line for line in flags)
    guessed = any(line.startswith("#|") for line in lines)  # makemessages' fuzzy-match guess
    if all(strs) and not fuzzy and not guessed:
        return block
    if msgid not in EN:
        missing.append(msgid)
        return block
    english = EN[msgid]
    out = [line for line in _drop_fuzzy(lines) if not line.startswith("#|")]
    out = _drop_msgstr(out)
    if "msgid_plural" in fields:
        forms = english if isinstance(english, (tuple, list)) else (english, english)
        out += [f'msgstr[{i}] "{_quote(form)}"' for i, form in enumerate(forms)]
    else:
        out.append(f'msgstr "{_quote(english)}"')
    return "\n".join(out)


def _drop_fuzzy(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        if line.startswith("#,"):
            flags = [f.strip() for f in line[2:].split(",") if f.strip() and f.strip() != "fuzzy"]
            if not flags:
                continue
            line = "#, " + ", ".join(flags)
        out.append(line)
    return out


def _drop_msgstr(lines: list[str]) -> list[str]:
    """The entry without its msgstr lines (including their continuation lines)."""
    out, key = [], None
    for line in lines:
        match = _KEYWORD.match(line)
        if match:
            key = match.group(1)
        elif not line.startswith('"'):
            key = None
        if not (key and key.startswith("msgstr")):
            out.append(line)
    return out


def fill() -> list[str]:
    text = PO.read_text(encoding="utf-8")
    missing: list[str] = []
    blocks = re.split(r"\n{2,}", text.strip("\n"))
    text = "\n\n".join(_fill_entry(block, missing) for block in blocks) + "\n"
    PO.write_text(text, encoding="utf-8")
    return missing


if __name__ == "__main__":
    left = fill()
    print("untranslated:", left or "none")
