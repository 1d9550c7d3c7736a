"""Error messages in the caller's language: zh-CN (the default) or English.

``code`` and ``field`` never change with the language; only ``message`` does. The hub raises errors with
English messages (for logs and tests); at the boundary (a REST error body, a WebSocket ``error`` frame)
``localize`` turns one into Chinese: a message of the form ``"<field>: <reason>"`` becomes
``"<中文字段名>：<中文原因>"``, whole messages are looked up in a catalogue of patterns, a refused
transition says what state the call or assignment is in (and, when the hub knows it, who put it there and
when), and anything not in the catalogue still gets a Chinese sentence for its code. Words follow
docs/GLOSSARY.md. Sans-I/O: no clock, no database.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Literal

Lang = Literal["zh-CN", "en"]
DEFAULT_LANG: Lang = "zh-CN"
LANGS: tuple[Lang, ...] = ("zh-CN", "en")

# --- words (docs/GLOSSARY.md) ------------------------------------------------------------------------

CALL_STATE_ZH: dict[str, str] = {
    "intake": "待派单", "dispatched": "已派单", "in_progress": "处置中", "review": "待审核",
    "accepted": "已审核", "visited": "已回访", "closed": "已结案", "cancelled": "已撤销",
}
ASSIGNMENT_STATE_ZH: dict[str, str] = {
    "dispatched": "待响应", "acknowledged": "已响应", "on_scene": "已到场", "reported": "已办结待审",
    "accepted": "审核通过", "declined": "转派审核中", "transferred": "已转派", "withdrawn": "已撤回",
}
# What each command does, as the glossary names the action.
COMMAND_ZH: dict[str, str] = {
    "create_call": "新建呼叫", "dispatch": "派单", "acknowledge": "响应", "arrive": "报到",
    "report_result": "办结", "decline": "申请转派", "reroute": "同意转派", "withdraw": "撤回",
    "accept": "审核通过", "send_back": "退回重办", "return_visit": "回访", "close": "结案", "cancel": "撤销",
    "note": "添加备注", "escalate": "督办", "reject_transfer": "驳回转派", "set_lead": "变更主办",
    "reopen": "重办", "nudge": "催办", "handle_alarm": "认领督办",
}
# The event that put a call or assignment in its state, as a past action ("已由 X 于 09:31 <verb>").
EVENT_ZH: dict[str, str] = {
    "call.created": "登记", "call.accepted": "审核通过", "call.sent_back": "退回重办", "call.visited": "回访",
    "call.closed": "结案", "call.cancelled": "撤销", "call.reopened": "重办", "call.lead_changed": "变更主办",
    "assignment.dispatched": "派单", "assignment.acknowledged": "响应", "assignment.arrived": "报到",
    "assignment.reported": "办结", "assignment.declined": "申请转派", "assignment.transferred": "转派",
    "assignment.withdrawn": "撤回", "assignment.accepted": "审核通过", "assignment.reopened": "重办",
    "assignment.transfer_rejected": "驳回转派", "assignment.escalated": "督办",
}
TARGET_ZH: dict[str, str] = {
    "enforcement": "综合执法", "police": "公安", "justice": "司法", "market": "市场监管", "land": "自然资源",
    "transport": "交通运输", "fire": "消防",
}
ROLE_ZH: dict[str, str] = {
    "operator": "值班员", "liaison": "联络员", "supervisor": "督查", "admin": "管理员", "leader": "镇街领导",
    "department_head": "部门负责人", "grid_worker": "网格员", "integration": "外部系统", "system": "系统",
}
DEADLINE_ZH: dict[str, str] = {"ack": "响应", "arrive": "到场", "resolve": "办结", "review": "转派审核"}
# Field names as the consoles label them (the last part of a path: ``args.targets[0]`` → targets).
FIELD_ZH: dict[str, str] = {
    "title": "事由", "description": "情况描述", "address": "地点", "category": "类别", "priority": "紧急程度",
    "source": "来源", "reporter_name": "反映人", "reporter_phone": "联系电话", "phone": "来电号码",
    "targets": "派往部门", "target": "部门", "suggested_target": "建议转给", "lead": "主办部门",
    "reason": "理由", "text": "内容", "result": "办结情况", "note": "备注", "comment": "回访意见",
    "resolved": "问题是否解决", "satisfaction": "满意度", "ratings": "各部门评价", "reopen": "重办",
    "visit": "回访", "assignment_ids": "派单", "assignment_id": "派单", "call_id": "呼叫", "command_id": "指令编号",
    "attachments": "照片与附件", "attachment_id": "附件", "file": "文件", "username": "用户名", "password": "密码",
    "unit": "镇属力量", "department": "部门", "code": "代码", "name_zh": "中文名称", "name_en": "英文名称",
    "grid": "网格", "boundary": "边界", "display_name": "姓名", "team_lead": "带班组长",
    "township_id": "镇街", "township": "镇街", "grid_id": "网格", "lat": "纬度", "lon": "经度",
    "latitude": "纬度", "longitude": "经度", "month": "月份", "from": "开始日期", "to": "结束日期",
    "since": "开始日期", "until": "结束日期", "preset": "权重方案", "figure": "指标", "group": "分组",
    "state": "状态", "limit": "条数", "offset": "起始位置", "cursor": "翻页位置", "q": "搜索内容",
    "acted_at": "操作时间", "level": "督办级别", "deadline_kind": "时限", "due": "时限", "fired_at": "触发时间",
    "name": "名称", "kind": "类型", "body": "请求内容", "args": "参数", "type": "消息类型", "cursors": "续传位置",
    "service_code": "服务类别", "service_request_id": "诉求编号", "api_key": "接入密钥", "status": "状态",
    "ticket_id": "工单号", "integration": "接入系统", "role": "角色", "history": "历史月数", "scale": "规模",
    "duration": "时长", "content": "内容", "subscription": "推送订阅", "endpoint": "推送地址",
    "coordinates": "坐标", "channel": "渠道", "audience": "对象",
    # settings an admin changes (docs/CONFIGURATION.md "Settings in the database")
    "categories": "类别", "sla": "时限与督办", "evaluation": "考核权重", "based_on": "所依据的版本",
    "within": "时限", "ack": "响应时限", "arrive": "到场时限", "resolve": "办结时限", "ladder": "督办层级",
    "transfer_review_s": "转派审核时限", "after_s": "超时后时间", "notify": "通知对象",
    "repeat_every_s": "重复间隔", "repeat_count": "重复次数", "zh": "中文名称", "en": "英文名称",
    "route": "默认派驻部门", "retired": "停用", "presets": "权重方案", "response_rate": "响应率",
    "arrive_rate": "到场及时率", "result_rate": "办结及时率", "resolution_rate": "解决率",
    "satisfaction_rate": "满意率",
}

_PATH_PART = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def field_label(path: str | None) -> str:
    """The Chinese label of a field path (its last named part), or the path itself when unknown."""
    if not path:
        return ""
    parts = _PATH_PART.findall(path)
    for part in reversed(parts):
        if part in FIELD_ZH:
            return FIELD_ZH[part]
    return path


def _target(code: str) -> str:
    code = code.strip("'\"")
    if code.startswith("unit:"):
        return "镇属力量"
    return TARGET_ZH.get(code, code)


def _list(text: str, table: Mapping[str, str]) -> str:
    return "、".join(table.get(x.strip().strip("'\""), x.strip()) for x in text.split(","))


_CONVERT: dict[str, Callable[[str], str]] = {
    "state": lambda s: ASSIGNMENT_STATE_ZH.get(s, CALL_STATE_ZH.get(s, s)),
    "cstate": lambda s: CALL_STATE_ZH.get(s, s),
    "astate": lambda s: ASSIGNMENT_STATE_ZH.get(s, s),
    "target": _target,
    "role": lambda s: ROLE_ZH.get(s, s),
    "verb": lambda s: COMMAND_ZH.get(s, s),
    "dkind": lambda s: DEADLINE_ZH.get(s, s),
    "label": field_label,
    "other": field_label,
    "prio": lambda s: _list(s, {"urgent": "紧急", "normal": "一般", "low": "较低"}),
    "event": lambda s: EVENT_ZH.get(s, s),
    "at": lambda s: _when(s),
    "onoff": lambda s: {"disabled": "停用", "enabled": "启用", "retired": "停用"}.get(s, s),
    "nested": lambda s: translate("validation", s)[0],  # a message inside another ("row 7: …")
}

# --- the catalogues ----------------------------------------------------------------------------------

# The reason after "<field>: " (pydantic's and the hub's own checks), English → Chinese.
REASONS: tuple[tuple[str, str], ...] = (
    (r"is required|required|Field required", "必须填写"),
    (r"is not an allowed field|unknown field|Extra inputs are not permitted", "不是可接受的字段"),
    (r"must be one of (?P<any>.+)", "取值不在允许范围内（可选：{any}）"),
    (r"must be (?P<prio>(?:urgent|normal|low)(?:, (?:urgent|normal|low))*)", "须为 {prio}"),
    (r"must not be empty", "不能为空"),
    (r"must be at least (?P<n>\d+) characters(?: without spaces)?", "至少 {n} 个字符"),
    (r"must be at most (?P<n>\d+) characters", "最多 {n} 个字符"),
    (r"must have at least (?P<n>\d+) items?", "至少选择 {n} 项"),
    (r"must have at most (?P<n>\d+) items", "最多 {n} 项"),
    (r"must be at least (?P<n>-?[\d.]+)", "不能小于 {n}"),
    (r"must be at most (?P<n>-?[\d.]+)", "不能大于 {n}"),
    (r"must be more than (?P<n>-?[\d.]+)", "必须大于 {n}"),
    (r"must be at most 20 digits, \+, - or spaces", "最多 20 位数字，只能含数字、+、- 或空格"),
    (r"must be a department code or unit:<id>", "须为派驻部门或镇属力量"),
    (r"has an invalid format", "格式不正确"),
    (r"must be a UUID", "编号格式不正确"),
    (r"must be an ISO-8601 datetime with a time zone(?:, or epoch milliseconds)?", "须为带时区的日期时间"),
    (r"must be epoch milliseconds between 1970 and 2200", "时间超出范围"),
    (r"must be true or false", "须为是或否"),
    (r"must be an integer", "须为整数"),
    (r"must be a number", "须为数字"),
    (r"must be a string", "须为文字"),
    (r"must be a list", "须为列表"),
    (r"must be an object", "须为对象"),
    (r"must not contain duplicates", "不能重复"),
    (r"must not contain a NUL character", "含有不允许的字符"),
    (r"must be given together with (?P<other>\S+)", "须与「{other}」一起填写"),
    (r"must be one of the targets", "须为所派部门之一"),
    (r"must name exactly one of assignment_id or target", "须指定一个派单或一个部门"),
    (r"is required \(or give per-department ratings\)", "须填写回访结果（或逐个部门评价）"),
    (r"give either ratings or resolved/satisfaction, not both", "逐个部门评价与总体评价只能二选一"),
    (r"must be (?P<verb>[a-z_]+)", "须为 {verb}"),
    (r"unknown command (?P<verb>'?[a-z_]+'?); expected one of .+", "未知的指令 {verb}"),
    (r"unknown target '?(?P<target>[^' ]+)'? in this township", "{target} 不在本镇街"),
    (r"unknown target '?(?P<target>[^' ]+)'?", "未知的部门 {target}"),
    (r"unknown category '?(?P<x>[^']+)'?", "未知的类别 {x}"),
    (r"unknown or retired category '?(?P<x>[^']+)'?", "类别 {x} 不存在或已停用"),
    (r"unknown department '?(?P<target>[^']+)'?", "未知的部门 {target}"),
    (r"unknown department", "未知的部门"),
    (r"missing", "缺少此项"),
    (r"deadlines must satisfy ack <= arrive <= resolve", "须满足 响应时限 ≤ 到场时限 ≤ 办结时限"),
    (r"after_s must not decrease from one level to the next", "各级督办的超时后时间不能比上一级早"),
    (r"weights must add up to 1\.0, they add up to (?P<n>[\d.e-]+)", "权重合计须为 100%（现为 {n}）"),
    (r"is kept in the configuration file, not here", "只能在配置文件中修改"),
    (r"must be a table \(a JSON object\)", "须为对象"),
    (r"a code is 2-40 of a-z 0-9 _, starting with a letter", "代码为 2–40 个小写字母、数字或下划线，以字母开头"),
    (r"name at least one department", "至少选择一个部门"),
    (r"keep at least one category that is not retired", "至少保留一个未停用的类别"),
    (r"nothing changed \(the value is version (?P<n>\d+)\)", "没有修改（与版本 {n} 相同）"),
    (r"(?P<target>\S+) already has an open assignment on this call", "{target} 已有本呼叫的派单在办"),
    (r"the assignment is already (?P<target>[^']+)'s; .+", "该派单已属于 {target}，无需转派"),
    (r"(?P<dkind>\w+) has not reached level (?P<n>\d+)", "{dkind}时限尚未到第 {n} 级督办"),
    (r"must not be before the deadline", "不能早于时限"),
    (r"must not be before the level fell due", "不能早于该级督办到期时间"),
    (r"every id must name a reported assignment of this call", "须为本呼叫中已办结待审的派单"),
    (r"a (?P<x>\S+) call closed without a return visit needs a .+",
     "12345 热线等来源的呼叫未经回访结案须填写理由"),
    (r"no such assignment on this call", "本呼叫没有这个派单"),
    (r"no such call", "没有这个呼叫"),
    (r"(?P<x>\S+) names no accepted assignment of this call", "不是本呼叫中审核通过的派单"),
    (r"(?P<target>\S+) is rated twice", "{target} 被重复评价"),
    (r"(?P<x>\S+) is not an assignment rated unresolved or unsatisfied.*", "只能重办被评为未解决或不满意的派单"),
    (r"a (?P<astate>\w+) assignment cannot lead", "{astate}的派单不能设为主办"),
    (r"(?P<target>\S+) already leads this call", "{target} 已是主办部门"),
    (r"required for a county-wide account", "县级账号须指定镇街"),
    (r"expected a month as YYYY-MM \(e\.g\. 2026-10\), got .+", "须为 年-月（如 2026-10）"),
    (r"(?P<d1>[\d-]+) is before from (?P<d2>[\d-]+)", "结束日期 {d1} 早于开始日期 {d2}"),
    (r"a range may span at most (?P<n>\d+) days", "时间范围最长 {n} 天"),
    (r"give either month or from/to, not both", "月份与起止日期只能二选一"),
    (r"from and to go together", "开始日期与结束日期须同时填写"),
    (r"'?(?P<x>[^']*)'? is not one of .+", "{x} 不是可选的方案"),
    (r"this integration reports to (?P<x>\S+) only", "该接入系统只能上报到 {x}"),
    (r"a location inside the county is required to find the township.*", "须提供县内的位置以确定镇街"),
    (r"\((?P<x>[^)]*)\) lies outside every township of the county", "位置（{x}）不在本县任何镇街内"),
    (r"no township '?(?P<x>[^']+)'?", "没有这个镇街（{x}）"),
    (r"no service '?(?P<x>[^']+)'?", "没有这个服务类别（{x}）"),
    (r"must be a W3C datetime .+", "须为带时区的日期时间（如 2026-11-02T08:00:00+08:00）"),
    (r"must carry a time zone offset", "须带时区"),
    (r"must be open and/or closed", "须为 open 或 closed"),
    (r"at most (?P<n>\d+) ids", "最多 {n} 个编号"),
    (r"must be one of (?P<x>.+)", "须为 {x} 之一"),
    (r"2-40 of a-z 0-9 _ -", "2–40 个字符，只能含小写字母、数字、_ 或 -"),
    (r"an integration '?(?P<x>[^']+)'? (?:\(or its account\) )?already exists", "接入系统 {x} 已存在"),
    (r"no attachment (?P<x>\S+) \(unknown, or removed a day after upload\)", "附件不存在（或上传一天后未使用已删除）"),
    (r"attachment (?P<x>\S+) was uploaded by someone else", "附件是别人上传的"),
    (r"attachment (?P<x>\S+) is already attached to a call", "附件已用于其他呼叫"),
    (r"is empty", "文件是空的"),
    (r"is a damaged or truncated PDF.*", "PDF 文件已损坏或不完整"),
    (r"is (?P<w>\d+)×(?P<h>\d+) pixels, more than the (?P<n>\d+) allowed", "图片 {w}×{h} 像素，超过允许的 {n} 像素"),
    (r"is not a JPEG, PNG, WebP image or a PDF.*", "只能上传 JPEG、PNG、WebP 图片或 PDF"),
    (r"is a damaged or truncated image.*", "图片已损坏或不完整"),
    (r"your evaluation scope is township (?P<x>\S+)", "只能查看本镇街的考核"),
    (r"your evaluation scope is (?P<target>\S+)", "只能查看 {target} 的考核"),
    (r"a report goes to the command centre, which decides who handles it", "上报由指挥中心决定派往哪个部门"),
    (r"a grid worker's reports have source grid", "网格员上报的来源只能是网格员"),
    (r"a grid worker reports from their own grid", "网格员只能从本网格上报"),
    (r"township (?P<x>\d+) is outside your scope", "镇街 {x} 不在您的范围内"),
    (r"(?P<r>.+) \(and (?P<n>\d+) more\)", "{r}（另有 {n} 处错误）"),
    (r"missing field", "缺少此字段"),
    (r"expected integer >= (?P<n>\d+)", "须为不小于 {n} 的整数"),
    (r"expected \[township_id, seq\] pair", "须为 [镇街, 序号] 对"),
    (r"expected (?:nil, )?(?P<x>[a-z ,\[\]_]+?)(?:, got (?P<y>\w+))?", "类型不正确"),
    (r"must be (?:base64url|the raw 32-byte).*", "格式不正确"),
    (r"full number, masked form or last 4 digits.*|.*last 4 digits.*", "须为完整号码、138****5678 形式或后 4 位"),
    (r"must be 1 to (?P<n>\d+) months", "须为 1 到 {n} 个月"),
    (r"not a postgresql:// URL: .+", "不是 postgresql:// 地址"),
    (r"no executable (?P<x>\S+) in (?P<y>.+)", "{y} 中没有 {x}"),
    (r"no such call", "没有这个呼叫"),
    (r"too long", "太长"),
    (r"'?(?P<x>\w+)'? is not sent by clients", "客户端不能发送此类消息"),
    (r"already subscribed: one subscribe per connection", "每个连接只能订阅一次"),
    (r"frames must be binary msgpack", "须为二进制 msgpack 帧"),
    # county administration (dispatch/store/county.py, user_admin.py, user_import.py; docs/ADMIN.md)
    (r"the body is empty: send the sheet's bytes", "文件是空的：请上传表格文件"),
    (r"no user '?(?P<x>[^']+)'?", "没有账号 {x}"),
    (r"(?P<x>\S+) is already (?P<onoff>\w+)", "{x} 已{onoff}"),
    (r"you cannot disable your own account", "不能停用自己的账号"),
    (r"1-(?P<n>\d+) characters", "须为 1–{n} 个字符"),
    (r"no department '?(?P<x>[^' ]+)'? \(one of (?P<y>.+)\)", "没有部门 {x}（可选：{y}）"),
    (r"2-32 of a-z 0-9 _ -, starting with a letter", "2–32 个字符，只能含小写字母、数字、_ 或 -，以字母开头"),
    (r"no unit (?P<x>.+)", "没有这个镇属力量（{x}）"),
    (r"no grid (?P<x>.+)", "没有这个网格（{x}）"),
    (r"(?P<target>\S+) is already stationed in (?P<t>\S+)", "{target} 已派驻 {t}"),
    (r"(?P<target>\S+) is not stationed in (?P<t>\S+)", "{target} 未派驻 {t}"),
    (r"(?P<target>\S+) has (?P<n>\d+) open assignment\(s\) in (?P<t>\S+); they must be finished or withdrawn first",
     "{target} 在 {t} 还有 {n} 件派单未办结，须先办结或撤回"),
    (r"(?P<x>.+) is already retired", "{x} 已停用"),
    (r"(?P<x>.+) has (?P<n>\d+) open assignment\(s\); they must be finished or withdrawn first",
     "{x} 还有 {n} 件派单未办结，须先办结或撤回"),
    (r"a township '?(?P<x>[^']+)'? exists", "镇街 {x} 已存在"),
    (r"(?P<t>\S+) has a grid '?(?P<x>[^']+)'?", "{t} 已有网格 {x}"),
    (r"(?P<t>\S+) has a unit '?(?P<x>[^']+)'?", "{t} 已有镇属力量 {x}"),
    (r"row (?P<n>\d+): (?P<nested>.+)", "第 {n} 行：{nested}"),
)

# Whole messages (no field prefix), English → Chinese.
MESSAGES: tuple[tuple[str, str], ...] = (
    (r"cannot (?P<x>.+?) an? (?P<noun>call|assignment) that is (?P<state>\w+)", "__illegal__"),
    (r"cannot escalate (?P<dkind>\w+) on an assignment that is (?P<astate>\w+)", "派单{astate}，不能督办"),
    (r"login required", "请先登录"),
    (r"wrong username or password", "用户名或密码错误"),
    (r"too many failed logins; try again in (?P<n>\d+) s", "登录失败次数过多，请 {n} 秒后再试"),
    (r"password must be at least (?P<n>\d+) characters", "密码至少 {n} 个字符"),
    (r"cross-origin request refused.*", "拒绝来自其他网站的请求"),
    (r"role (?P<role>\w+) may not .+", "{role}无权进行此操作"),
    (r"role (?P<role>\w+) cannot (?P<verb>\w+)", "{role}不能{verb}"),
    (r"request body larger than (?P<n>\d+) bytes", "请求内容超过 {n} 字节"),
    (r"Content-Type must be .+", "请求格式不正确（Content-Type）"),
    (r"body is not valid JSON.*", "请求内容不是有效的 JSON"),
    (r"body must be a JSON object|the JSON body must be an object", "请求内容须为 JSON 对象"),
    (r"the body must be UTF-8", "请求内容须为 UTF-8 编码"),
    (r"malformed form body.*", "表单内容格式不正确"),
    (r"a parameter contains a NUL character", "参数含有不允许的字符"),
    (r"a value is out of range or malformed.*", "有一项取值超出范围或格式不正确"),
    (r"no call (?P<x>\S+)", "没有这个呼叫"),
    (r"no assignment (?P<x>\S+)", "没有这个派单"),
    (r"no attachment (?P<x>\S+)", "没有这个附件"),
    (r"attachment (?P<x>\S+) is not an image and has no thumbnail", "该附件不是图片，没有缩略图"),
    (r"no user '?(?P<x>[^']+)'?", "没有用户 {x}"),
    (r"user '?(?P<x>[^']+)'? already exists", "用户 {x} 已存在"),
    (r"user '?(?P<x>[^']+)'? is not valid for role (?P<role>\w+): .+", "用户 {x} 与角色{role}不符"),
    (r"unknown township, department, unit or grid: .+", "镇街、部门、镇属力量或网格不存在"),
    (r"no township '?(?P<x>[^']+)'?", "没有这个镇街（{x}）"),
    (r"township (?P<x>\d+) has no event log", "镇街 {x} 没有事件记录"),
    (r"no ticket '?(?P<x>[^']+)'?", "没有工单 {x}"),
    (r"no integration '?(?P<x>[^']+)'?", "没有接入系统 {x}"),
    (r"no service request '?(?P<x>[^']+)'?", "没有诉求 {x}"),
    (r"format must be one of .+", "不支持的格式"),
    (r"no such resource: .+", "没有这个资源"),
    (r"metrics: a valid bearer token is required", "需要有效的监控令牌"),
    (r"signature verification failed", "签名校验失败"),
    (r".*more than (?P<n>\d+) minutes from the hub's.*", "时间戳与平台时间相差超过 {n} 分钟"),
    (r"this signature was used before.*", "该签名已使用过（拒绝重放）"),
    (r"integration (?P<x>\S+) is disabled", "接入系统 {x} 已停用"),
    (r"api_key is required", "需要接入密钥"),
    (r"invalid api_key", "接入密钥无效"),
    (r"this api_key is disabled", "该接入密钥已停用"),
    (r"a (?P<role>\w+) without a township cannot upload evidence", "{role}不属于任何镇街，不能上传照片与附件"),
    (r"a (?P<role>\w+) without a township cannot (?P<verb>\w+)", "{role}不属于任何镇街，不能{verb}"),
    (r"only a person's account may hold a push subscription", "只有个人账号可以接收推送"),
    (r"a (?P<role>\w+) has read-only access to calls and cannot (?P<verb>\w+)", "{role}只能查看，不能{verb}"),
    (r"only the SLA engine may (?P<verb>\w+)", "只有时限引擎可以{verb}"),
    (r"the system actor may only escalate, not (?P<verb>\w+)", "系统只能督办，不能{verb}"),
    (r"a (?P<role>\w+) may not export the raw event log", "{role}无权导出原始事件记录"),
    (r"a (?P<role>\w+) may not read (?P<x>.+)", "{role}无权查看"),
    (r"this call belongs to another township", "该呼叫属于其他镇街"),
    (r"only the liaison of the assigned department may (?P<verb>\w+)", "只有被派单部门的联络员可以{verb}"),
    (r"this liaison account is not attached to a department or unit", "该联络员账号未关联部门或镇属力量"),
    (r"this assignment is not for (?P<target>\S+)", "该派单不是派给{target}的"),
    (r"(?P<target>\S+) has no open assignment on this call", "{target}在本呼叫没有在办的派单"),
    (r"a liaison cannot (?P<verb>\w+); ask the command centre", "联络员不能{verb}，请联系指挥中心"),
    (r"a (?P<role>\w+) reports matters to the command centre and cannot (?P<verb>\w+)",
     "{role}只能向指挥中心上报，不能{verb}"),
    (r"a (?P<role>\w+) cannot read the evaluation.*", "{role}无权查看考核"),
    (r"command_id (?P<x>\S+) was already used for a different command.*", "该指令编号已用于另一条指令，请重新提交"),
    (r"this call already exists", "该呼叫已创建"),
    (r"this county already has calls.*", "本县已有呼叫，不能再导入历史"),
    (r"database unavailable.*; retry in (?P<n>[\d.]+) s", "数据库暂时无法访问，请 {n} 秒后重试"),
    (r"more than (?P<n>\d+) requests a minute; retry in (?P<s>[\d.]+) s.*", "每分钟请求超过 {n} 次，请 {s} 秒后重试"),
    (r"more than (?P<n>[\d.]+) frames/s \(burst (?P<b>\d+)\); frame dropped, retry after (?P<s>[\d.]+) s",
     "发送过快（每秒超过 {n} 条），本条已丢弃，请 {s} 秒后重试"),
    (r"frame of (?P<n>\d+) bytes exceeds the limit of (?P<m>\d+)", "消息 {n} 字节，超过上限 {m} 字节"),
    (r"text frame: frames must be binary msgpack", "须为二进制 msgpack 帧"),
    (r"msgpack extension type .+ is not allowed", "不允许 msgpack 扩展类型"),
    (r"not a msgpack value.*", "不是有效的 msgpack 数据"),
    (r"frame is not a map but .+", "消息须为 map"),
    (r"missing field 'type'", "缺少 type 字段"),
    (r"unknown message type .+", "未知的消息类型"),
    (r"'?(?P<x>\w+)'? is not sent by (?:clients|servers)", "不能发送此类消息"),
    (r"cannot escalate (?P<dkind>\w+) to level (?P<n>\d+): it is at level (?P<m>\d+)",
     "{dkind}时限已是第 {m} 级督办，不能升到第 {n} 级"),
    (r"already subscribed: one subscribe per connection", "每个连接只能订阅一次"),
    (r"internal error", "平台内部错误，请稍后重试"),
    (r"(?P<x>\w+) was changed by (?P<who>.+) at (?P<at>\S+) \(version (?P<n>\d+)\); this change was based on "
     r"version (?P<m>\d+): reload it and make the change again",
     "该设置已由 {who} 于 {at} 修改（版本 {n}），本次修改基于版本 {m}：请重新加载后再修改"),
    (r"(?P<x>\w+) has no version (?P<n>\d+): it is the configuration file's \(version 0\); reload it and make "
     r"the change again", "该设置没有版本 {n}（当前为配置文件的默认值，版本 0）：请重新加载后再修改"),
    (r"no settings section '?(?P<x>[^']+)'? .*", "没有这个设置（{x}）"),
)

# Every code's sentence when neither catalogue knows the message (never English in the zh-CN UI).
BY_CODE: dict[str, str] = {
    "bad_request": "请求格式不正确",
    "validation": "填写有误",
    "unauthenticated": "请先登录",
    "forbidden": "无权进行此操作",
    "not_found": "没有找到，或不在您的范围内",
    "payload_too_large": "请求内容过大",
    "conflict": "与当前状态冲突，请刷新后再试",
    "illegal_transition": "当前状态不允许此操作",
    "command_id_reused": "该指令编号已用于另一条指令，请重新提交",
    "rate_limited": "操作过于频繁，请稍后再试",
    "protocol": "消息不符合协议",
    "frame_too_large": "消息过大",
    "internal": "平台内部错误，请稍后重试",
    "unavailable": "平台暂时无法访问数据库，请稍后重试",
    "undeliverable_event": "有一条事件无法送达，请刷新该呼叫",
    "config": "配置文件有误",
    "schema_too_new": "数据库版本比平台新，请升级平台",
}

_REASONS = tuple((re.compile(p), z) for p, z in REASONS)
_MESSAGES = tuple((re.compile(p), z) for p, z in MESSAGES)
_PREFIX = re.compile(r"^(?P<path>[A-Za-z_][\w.\[\]()-]*|--[\w-]+): (?P<rest>.+)$", re.S)


def pick_language(accept_language: str | None = None, explicit: str | None = None) -> Lang:
    """``explicit`` (a ``lang`` the client sends) if it names one, else the best of ``Accept-Language``
    (q-values honoured; ``zh*`` → zh-CN, ``en*`` → en), else zh-CN."""
    for value in (explicit,):
        chosen = _tag(value or "")
        if chosen is not None:
            return chosen
    best: tuple[float, int, Lang] | None = None
    for i, item in enumerate((accept_language or "").split(",")[:20]):
        tag, _, params = item.strip().partition(";")
        chosen = _tag(tag)
        if chosen is None:
            continue
        q = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                q = 0.0
        if q > 0 and (best is None or (q, -i) > (best[0], best[1])):
            best = (q, -i, chosen)
    return best[2] if best is not None else DEFAULT_LANG


def _tag(tag: str) -> Lang | None:
    tag = tag.strip().lower()
    if tag.startswith("zh"):
        return "zh-CN"
    if tag == "en" or tag.startswith("en-"):
        return "en"
    return None


def _fill(template: str, groups: Mapping[str, str | None]) -> str:
    values: dict[str, str] = {}
    for name, value in groups.items():
        value = value or ""
        convert = _CONVERT.get(name.rstrip("0123456789"))
        values[name] = convert(value) if convert else value
    return template.format(**values)


def translate_reason(reason: str) -> str | None:
    """The Chinese for a field's reason (``must be at most 200 characters``), or None when unknown."""
    reason = reason.strip()
    for pattern, zh in _REASONS:
        m = pattern.fullmatch(reason)
        if m:
            return _fill(zh, m.groupdict())
    return None


def _when(at: str) -> str:
    """``2026-11-30T09:31:05+08:00`` → ``2026-11-30 09:31`` (the glossary's one date-time format)."""
    return at[:16].replace("T", " ")


def _illegal(m: re.Match[str], context: Mapping[str, Any] | None) -> str:
    noun = m.group("noun")
    state = m.group("state")
    state_zh = (CALL_STATE_ZH if noun == "call" else ASSIGNMENT_STATE_ZH).get(state, state)
    what = "该呼叫" if noun == "call" else "该派单"
    verb = COMMAND_ZH.get(str((context or {}).get("command", "")), "")
    refused = f"不能{verb}：" if verb else "不能进行此操作："
    by = (context or {}).get("actor")
    at = (context or {}).get("at")
    done = EVENT_ZH.get(str((context or {}).get("event", "")))
    if by and at and done:
        return f"{refused}{what}已由 {by} 于 {_when(str(at))} {done}（当前状态：{state_zh}）"
    return f"{refused}{what}当前状态为「{state_zh}」"


def translate(code: str, message: str, field: str | None = None,
              context: Mapping[str, Any] | None = None) -> tuple[str, bool]:
    """The Chinese for one error and whether a catalogue knew it (False: the code's own sentence)."""
    text = message.strip()
    for pattern, zh in _MESSAGES:
        m = pattern.fullmatch(text)
        if m:
            if zh == "__illegal__":
                return _illegal(m, context), True
            return _fill(zh, m.groupdict()), True
    prefixed = _PREFIX.match(text)
    if prefixed:
        path, rest = prefixed.group("path"), prefixed.group("rest")
        # "subscribe.cursors[0][1]: expected integer" names the message before the field
        reason = translate_reason(rest)
        if reason is None:
            inner = _PREFIX.match(rest)  # "ratings.0: police names no …" inside "args.ratings[0]: …"
            if inner:
                reason = translate_reason(inner.group("rest"))
        if reason is not None:
            label = field_label(field or path.lstrip("-"))
            return f"{label}：{reason}", True
    reason = translate_reason(text)
    if reason is not None:
        label = field_label(field)
        return (f"{label}：{reason}" if label else reason), True
    fallback = BY_CODE.get(code, BY_CODE["internal"])
    label = field_label(field)
    if label and code == "validation":
        return f"{label}：{fallback}", False
    return fallback, False


def localize(code: str, message: str, field: str | None, lang: Lang,
             context: Mapping[str, Any] | None = None) -> str:
    """``message`` in ``lang``: English as raised, or its Chinese."""
    if lang == "en":
        by, at = (context or {}).get("actor"), (context or {}).get("at")
        return f"{message} (by {by} at {_when(str(at))})" if by and at else message
    return translate(code, message, field, context)[0]
