"""Settings an admin changes at run time (docs/CONFIGURATION.md "Settings in the database"), pure rules.

Three sections of the configuration are administrable: ``categories`` (codes, names, routes, retired),
``sla`` (the deadlines and the escalation ladder; ``sweep_s`` and ``horizon_s`` stay in the file) and
``evaluation`` (the weight presets). Each change is a new version of its whole section. The effective
configuration is the file with the latest version of each section put over it, validated by the same models
as the file; it also carries the ladder of every SLA version, so a clock escalates by the ladder it was started
under (``Config.ladder``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from dispatch.core.commands import describe_error
from dispatch.core.config import Config, Ladder, SlaConfig
from dispatch.core.domain import DeadlineKind
from protocols.errors import ValidationFailed

SECTIONS = ("categories", "sla", "evaluation")
# The keys of [sla] an admin manages; the timers' own (sweep_s, horizon_s) stay in the file.
SLA_KEYS = ("transfer_review_s", "within", "department", "category", "ladder")
CATEGORY_CODE = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
_KEYED = re.compile(r"^([A-Za-z_][\w]*(?:\.[\w]+)*): (.+)$", re.DOTALL)


class ConfigRef:
    """The configuration a node's parts read through: one reference, swapped whole when settings change."""

    def __init__(self, cfg: Config) -> None:
        self.current = cfg

    def swap(self, cfg: Config) -> None:
        self.current = cfg


def section_value(cfg: Config, section: str) -> dict[str, Any]:
    """One administrable section of ``cfg`` as a JSON document (the shape a PUT sends back)."""
    if section == "categories":
        return {code: cat.model_dump(mode="json") for code, cat in cfg.categories.items()}
    if section == "sla":
        return cfg.sla.model_dump(mode="json", include=set(SLA_KEYS))
    if section == "evaluation":
        return cfg.evaluation.model_dump(mode="json")
    raise ValueError(f"unknown settings section {section!r}")


def failed(exc: ValidationError) -> ValidationFailed:
    """The first fault as an error naming the configuration key (``sla.within.urgent.ack``)."""
    first = exc.errors()[0]
    loc = [str(p) for p in first["loc"] if p != "[key]"]
    msg = describe_error(first)  # the commands' sentences, and so their Chinese (protocols/localize.py)
    keyed = _KEYED.match(msg)
    if keyed is not None:  # a model's own check names the key inside it ("within.low: missing")
        inner, msg = keyed.group(1), keyed.group(2)
        if not loc or not inner.startswith(loc[0] + "."):
            loc = [*loc, inner]
        else:
            loc = [inner]
    key = ".".join(loc)
    return ValidationFailed(f"{key}: {msg}" if key else msg, field=key or None)


def apply(base: Config, values: Mapping[str, Mapping[str, Any]]) -> Config:
    """``base`` with the given sections replaced, validated like the file; ValidationFailed names the key."""
    unknown = set(values) - set(SECTIONS)
    if unknown:
        raise ValueError(f"unknown settings sections {sorted(unknown)}")
    data: dict[str, Any] = {
        "departments": {code: n.model_dump() for code, n in base.departments.items()},
        "categories": values.get("categories", section_value(base, "categories")),
        "sla": {"sweep_s": base.sla.sweep_s, "horizon_s": base.sla.horizon_s,
                **values.get("sla", section_value(base, "sla"))},
        "evaluation": values.get("evaluation", section_value(base, "evaluation")),
    }
    for field in SECTIONS:
        if not isinstance(data[field], Mapping):
            raise ValidationFailed(f"{field}: must be a table (a JSON object)", field=field)
    for key in values.get("sla", {}):
        if key not in SLA_KEYS:
            raise ValidationFailed(f"sla.{key}: is kept in the configuration file, not here", field=f"sla.{key}")
    try:
        checked = Config.model_validate(data)
    except ValidationError as exc:
        raise failed(exc) from None
    return base.model_copy(update={"categories": checked.categories, "sla": checked.sla,
                                   "evaluation": checked.evaluation})


def check_change(section: str, value: Mapping[str, Any]) -> None:
    """What an admin's change must satisfy beyond the file's rules."""
    if section == "categories":
        for code, cat in value.items():
            if not CATEGORY_CODE.match(code):
                raise ValidationFailed(f"categories.{code}: a code is 2-40 of a-z 0-9 _, starting with a letter",
                                       field=f"categories.{code}")
            if isinstance(cat, Mapping) and not cat.get("retired") and not cat.get("route"):
                raise ValidationFailed(f"categories.{code}.route: name at least one department",
                                       field=f"categories.{code}.route")
        if not any(isinstance(c, Mapping) and not c.get("retired") for c in value.values()):
            raise ValidationFailed("categories: keep at least one category that is not retired", field="categories")


def effective(base: Config, latest: Mapping[str, tuple[int, Mapping[str, Any]]],
              sla_history: Mapping[int, Mapping[str, Any]]) -> Config:
    """The file ``base`` with the latest stored version of each section; ``sla_history`` holds every stored
    SLA version (for the ladders of clocks started under an older one)."""
    cfg = apply(base, {section: value for section, (_, value) in latest.items()})
    ladders: dict[int, Ladder] = {0: _ladder(base.sla)}
    for version, value in sla_history.items():
        try:
            ladders[version] = _ladder(SlaConfig.model_validate(
                {"sweep_s": base.sla.sweep_s, "horizon_s": base.sla.horizon_s, **value}))
        except ValidationError:
            continue  # cannot happen for a stored version; the current ladder stands in
    cfg._versions = {section: version for section, (version, _) in latest.items()}
    cfg._ladders = ladders
    return cfg


def _ladder(sla: SlaConfig) -> Ladder:
    return {kind: tuple(sla.ladder[kind]) for kind in DeadlineKind}


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested tables as dotted keys (lists stay whole): ``{"within.urgent.ack": 120, ...}``."""
    if isinstance(value, Mapping) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value} if prefix else {}


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The keys that changed, each side by dotted key (a key absent on one side is null there)."""
    old, new = flatten(before), flatten(after)
    keys = sorted(k for k in old.keys() | new.keys() if old.get(k, _ABSENT) != new.get(k, _ABSENT))
    return {k: old.get(k) for k in keys}, {k: new.get(k) for k in keys}


_ABSENT = object()
