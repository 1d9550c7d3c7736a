"""The demo county as the simulated history sees it: how busy each township is and when, its places and grids,
what residents report there, and how each department tends to answer. Data and small pure helpers."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from dispatch.core.domain import Priority, Source

# Calls a weekday at scale 1 (the two sub-districts are the county town; the rest are rural towns).
BUSY: dict[str, float] = {
    "zhongdu": 15, "wenshang": 13, "nanzhan": 9, "nanwang": 8, "yiqiao": 8, "ciqiu": 6, "guolou": 6,
    "kangyi": 5, "yuanzhuang": 5, "baishi": 5, "guocang": 5, "yinsi": 4, "yangdian": 4, "liulou": 4, "juntun": 3,
}
DEFAULT_BUSY = 5.0
URBAN = frozenset({"zhongdu", "wenshang"})
WEEKDAY = (1.15, 1.05, 1.0, 1.0, 1.05, 0.8, 0.7)  # Monday first
# When calls come in (local hour 0..23): markets at dawn, office hours, the evening.
HOURS = (0.3, 0.2, 0.15, 0.15, 0.2, 0.5, 1.5, 3.0, 4.5, 5.0, 4.8, 4.0, 2.5, 2.5, 4.0, 4.5, 4.5, 4.2, 3.5, 3.2,
         2.8, 2.0, 1.2, 0.6)
NIGHT_OWLS = {"noise": (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
                        0.0, 1.0, 3.0, 5.0, 6.0, 5.0, 3.0)}

# The county's "big data": parking order, flying-wire charging and street vending lead (docs: DOMAIN.md).
CATEGORY_WEIGHT = {
    "parking": 17, "street_vending": 15, "flying_wire_charging": 13, "noise": 8, "neighbour_dispute": 8,
    "property_dispute": 8, "road_spillage": 7, "illegal_construction": 6, "food_safety": 6, "fire_hazard": 4,
    "illegal_land_use": 3,
}
DEFAULT_CATEGORY_WEIGHT = 3.0
URBAN_BIAS = {"parking": 1.5, "street_vending": 1.3, "property_dispute": 1.6, "noise": 1.3,
              "illegal_land_use": 0.2, "road_spillage": 0.6, "neighbour_dispute": 0.6}
RURAL_BIAS = {"illegal_land_use": 1.8, "road_spillage": 1.4, "neighbour_dispute": 1.4, "property_dispute": 0.3,
              "illegal_construction": 1.4, "parking": 0.7}
# Seasons: (month of the peak, amplitude): vending and noise in summer, charging fires in winter.
SEASON = {"street_vending": (7, 0.35), "noise": (7, 0.4), "flying_wire_charging": (1, 0.3),
          "fire_hazard": (1, 0.35), "road_spillage": (4, 0.3), "illegal_land_use": (3, 0.3)}

SOURCES: tuple[tuple[Source, float], ...] = (
    (Source.HOTLINE_12345, 34), (Source.GRID, 22), (Source.MINI_PROGRAM, 15), (Source.RESIDENT_APP, 10),
    (Source.PATROL, 13), (Source.WALK_IN, 6))
RESIDENT_SOURCES = frozenset({Source.HOTLINE_12345, Source.MINI_PROGRAM, Source.RESIDENT_APP, Source.WALK_IN})
PRIORITY: tuple[tuple[Priority, float], ...] = ((Priority.URGENT, 0.12), (Priority.NORMAL, 0.73),
                                                (Priority.LOW, 0.15))
PRIORITY_BY_CATEGORY: dict[str, tuple[tuple[Priority, float], ...]] = {
    "fire_hazard": ((Priority.URGENT, 0.45), (Priority.NORMAL, 0.5), (Priority.LOW, 0.05)),
    "flying_wire_charging": ((Priority.URGENT, 0.3), (Priority.NORMAL, 0.65), (Priority.LOW, 0.05)),
    "illegal_land_use": ((Priority.URGENT, 0.03), (Priority.NORMAL, 0.5), (Priority.LOW, 0.47)),
    "illegal_construction": ((Priority.URGENT, 0.05), (Priority.NORMAL, 0.6), (Priority.LOW, 0.35)),
}

# -- places ---------------------------------------------------------------------------------------------

PLACE_NAMES: dict[str, tuple[str, ...]] = {
    "residential": ("幸福小区", "锦绣家园", "阳光花园", "翰林苑", "东方名郡", "水岸新城", "桂花苑", "和谐家园",
                    "福泰小区", "金色华府"),
    "market": ("农贸市场", "早市东口", "夜市", "大集", "蔬菜批发市场"),
    "road": ("G105国道东侧", "S338省道", "人民路", "建设路", "汶河大桥", "中都大街", "泉河路"),
    "commercial": ("商业街", "汽车站", "第一中学门口", "卫生院门口", "步行街", "中心小学门口", "购物广场"),
    "village": ("后李村", "东王庄村", "西郭村", "南陈村", "北孙庄村", "前刘村", "张楼村", "马庄村", "白庄村",
                "鲁桥村"),
    "site": ("工业园区", "建筑工地", "汶河砂场", "物流园", "废品收购站"),
}
PLACES_URBAN = {"residential": 7, "market": 3, "road": 4, "commercial": 5, "village": 2, "site": 2}
PLACES_RURAL = {"residential": 2, "market": 2, "road": 3, "commercial": 2, "village": 7, "site": 3}
AFFINITY: dict[str, tuple[str, ...]] = {
    "street_vending": ("market", "commercial", "road"), "illegal_construction": ("village", "residential"),
    "flying_wire_charging": ("residential", "village"), "parking": ("commercial", "residential", "road"),
    "food_safety": ("market", "commercial"), "neighbour_dispute": ("village", "residential"),
    "illegal_land_use": ("village", "site"), "road_spillage": ("road", "site"),
    "noise": ("residential", "commercial", "site"), "fire_hazard": ("residential", "commercial", "market", "site"),
    "property_dispute": ("residential",),
}
COUNTY_CENTRE = (35.73, 116.49)  # 汶上县


@dataclass(frozen=True, slots=True)
class Place:
    address: str
    kind: str
    grid_id: int | None
    lat: float
    lon: float
    weight: float  # how often things happen here: a few hot spots, a long tail


def places_of(code: str, name_zh: str, grid_ids: tuple[int, ...]) -> tuple[Place, ...]:
    """The township's places: the same for every seed (a county's geography does not change with the dice)."""
    rng = random.Random(f"places:{code}")
    clat = COUNTY_CENTRE[0] + rng.uniform(-0.12, 0.12)
    clon = COUNTY_CENTRE[1] + rng.uniform(-0.2, 0.2)
    counts = PLACES_URBAN if code in URBAN else PLACES_RURAL
    chosen = [(kind, name) for kind, n in counts.items() for name in rng.sample(PLACE_NAMES[kind], n)]
    ranks = list(range(len(chosen)))
    rng.shuffle(ranks)
    out = []
    for (kind, name), rank in zip(chosen, ranks, strict=True):
        grid = grid_ids[rng.randrange(len(grid_ids))] if grid_ids else None
        out.append(Place(f"{name_zh}{name}", kind, grid, round(clat + rng.uniform(-0.03, 0.03), 6),
                         round(clon + rng.uniform(-0.04, 0.04), 6), 1.0 / (rank + 1) ** 0.9))
    return tuple(out)


def season(category: str, month: int) -> float:
    peak, amplitude = SEASON.get(category, (1, 0.0))
    return 1.0 + amplitude * math.cos(2 * math.pi * (month - peak) / 12)


# -- what residents report, and what the others answer ------------------------------------------------------

TITLES: dict[str, tuple[tuple[str, str], ...]] = {
    "street_vending": (("摊位占用人行道", "{place}多个摊位占道经营，行人只能走机动车道。"),
                       ("流动摊贩堵塞路口", "{place}流动摊贩聚集，车辆通行困难。"),
                       ("烧烤摊占道经营", "{place}烧烤摊占道，油烟扰民。")),
    "illegal_construction": (("私搭乱建", "{place}有住户在院外私自加盖房屋。"),
                             ("楼顶违建", "{place}顶楼住户搭建彩钢棚。")),
    "flying_wire_charging": (("居民楼飞线充电", "{place}有电动车从窗口拉线充电，存在火灾隐患。"),
                             ("楼道电动车充电", "{place}楼道内电动车充电，堵塞疏散通道。")),
    "parking": (("车辆乱停堵塞通道", "{place}车辆乱停乱放，堵塞消防通道。"),
                ("私家车占用公交站", "{place}公交站台被私家车长时间占用。"),
                ("大货车长期违停", "{place}路边大货车长期停放，影响通行。")),
    "food_safety": (("商户售卖过期食品", "{place}有商户售卖过期食品。"),
                    ("无证食品加工作坊", "{place}有无证食品加工作坊，卫生条件差。")),
    "neighbour_dispute": (("邻里因排水发生纠纷", "{place}两户因排水沟问题多次争吵，需调解。"),
                          ("宅基地边界纠纷", "{place}两户因宅基地边界发生争执。")),
    "illegal_land_use": (("耕地上违规建房", "{place}有人在耕地上建房。"),
                         ("河道非法采砂", "{place}夜间有人非法采砂。")),
    "road_spillage": (("渣土车道路遗撒", "{place}约200米路段有渣土遗撒。"),
                      ("运输车辆沿途撒漏", "{place}运输车辆撒漏砂石，影响行车安全。")),
    "noise": (("夜间施工噪音扰民", "{place}夜间施工噪音大，居民无法休息。"),
              ("广场舞音响扰民", "{place}广场舞音响音量过大。")),
    "fire_hazard": (("消防通道堵塞", "{place}消防通道被杂物堵塞。"),
                    ("商铺私拉电线", "{place}商铺私拉电线，存在火灾隐患。")),
    "property_dispute": (("物业费纠纷", "{place}业主与物业因收费问题发生纠纷。"),
                         ("电梯长期故障无人修", "{place}电梯故障多日无人维修。")),
}
RESULTS = ("已到现场处置完毕，当事人已整改。", "已责令当事人限期整改，现场已恢复。", "已联合处置完毕，现场拍照留存。",
           "已现场调解，双方达成一致。", "已依法立案调查，后续按程序处理。", "已清理完毕，道路恢复通行。")
DECLINE_REASONS: dict[str, tuple[tuple[str, str], ...]] = {
    "transport": (("该路段属城区道路，由综合执法负责", "enforcement"), ("车辆停放问题属公安交警管辖", "police")),
    "enforcement": (("涉及耕地，属自然资源部门职责", "land"), ("涉及治安问题，建议转公安", "police")),
    "police": (("属民事纠纷，建议司法所调解", "justice"), ("属占道经营，建议转综合执法", "enforcement")),
    "justice": (("涉及治安问题，建议转公安", "police"),),
    "market": (("非食品经营问题，建议转综合执法", "enforcement"),),
    "land": (("属城镇规划区违建，建议转综合执法", "enforcement"),),
    "fire": (("属电动车管理问题，建议转综合执法", "enforcement"),),
}
GENERIC_DECLINE = (("不属本单位职责范围", "enforcement"),)
REJECT_REASONS = ("经核实属贵单位职责范围，请继续处置", "按照职责清单，该事项由贵单位办理")
APPROVE_REASONS = ("经核实同意转派", "职责清单核对无误，同意转派")
REROUTE_REASONS = ("派单有误，改派", "经研判改派主责单位")
SEND_BACK_REASONS = ("处置结果不完整，请补充现场照片", "群众反映问题仍未解决，请重新处置", "整改不到位，请继续跟进")
CANCEL_REASONS = ("来电人反映问题已自行解决", "重复来电，已并入前单", "经核实情况不属实")
WITHDRAW_REASONS = ("主办单位已处置，无需协办", "现场核实后无需本单位参与")
CLOSE_REASONS = ("来电人多次联系未接通", "来电人表示无需回访")
LEAD_REASONS = ("协办单位为主要责任方，调整主办",)
LIAISON_NOTES = ("已联系当事人，正在前往现场", "现场人员较多，已请求增援", "当事人暂不在现场，已留置通知")
NUDGE_TEXTS = ("请尽快处置并反馈", "群众再次来电催办，请加快进度", "已超时，请立即处置")
OPERATOR_NOTES = ("来电人再次来电催办", "已电话告知来电人处置进度")
VISIT_COMMENTS: dict[int, tuple[str, ...]] = {
    5: ("处理及时，非常满意",), 4: ("基本解决",), 3: ("处理一般，问题有反复",), 2: ("问题没有彻底解决",),
    1: ("没有人来处理",)}
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国红梅玉兰志强海燕春花立新文博淑珍德胜金凤"


@dataclass(frozen=True, slots=True)
class Profile:
    """How a department answers: each delay a lognormal fraction of its window (median, sigma)."""

    ack: tuple[float, float]
    arrive: tuple[float, float]
    result: tuple[float, float]
    decline: float  # asks for a transfer (转) instead of acknowledging
    send_back: float  # a reported result the operator sends back
    satisfaction: tuple[float, float, float, float, float]  # weights of 5, 4, 3, 2, 1 at the return visit
    unresolved: float


GOOD = Profile(ack=(0.35, 0.5), arrive=(0.45, 0.45), result=(0.3, 0.6), decline=0.03, send_back=0.04,
               satisfaction=(70, 23, 4, 2, 1), unresolved=0.02)
# One department visibly worse, so the scorecards have something to say: late, declining, sent back.
WORSE = "transport"
PROFILES: dict[str, Profile] = {
    "police": Profile((0.28, 0.5), (0.4, 0.45), (0.25, 0.6), 0.03, 0.03, (72, 22, 4, 1, 1), 0.02),
    "fire": Profile((0.22, 0.45), (0.35, 0.4), (0.25, 0.5), 0.02, 0.03, (75, 20, 3, 1, 1), 0.01),
    "enforcement": GOOD,
    "justice": Profile((0.38, 0.5), (0.5, 0.45), (0.35, 0.6), 0.03, 0.04, (66, 26, 5, 2, 1), 0.03),
    "market": Profile((0.4, 0.5), (0.5, 0.5), (0.3, 0.6), 0.03, 0.05, (68, 24, 5, 2, 1), 0.02),
    "land": Profile((0.42, 0.55), (0.55, 0.5), (0.4, 0.6), 0.04, 0.05, (64, 27, 6, 2, 1), 0.03),
    WORSE: Profile((0.8, 0.6), (0.85, 0.55), (0.65, 0.7), 0.12, 0.16, (48, 28, 12, 7, 5), 0.08),
}


def profile(target: str) -> Profile:
    return PROFILES.get(target, GOOD)


def person(rng: random.Random) -> tuple[str, str]:
    """A resident: a name and a mobile number."""
    name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
    return name, f"1{rng.choice('3578')}{rng.randrange(10**9):09d}"


def title_of(rng: random.Random, category: str, name_zh: str, place: str) -> tuple[str, str]:
    options = TITLES.get(category) or ((f"{name_zh}问题", "{place}群众反映" + name_zh + "问题。"),)
    title, description = rng.choice(options)
    return title, description.format(place=place)
