"""Open311 GeoReport v2 as data: services from the categories, the request form, a call as a service
request, errors and the XML forms (http://wiki.open311.org/GeoReport_v2/; field names are the spec's)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from dispatch.core.commands import PHONE_PATTERN
from dispatch.core.config import Config
from dispatch.core.domain import Priority
from dispatch.core.intake import FINISHED, agency, expected, status_text
from dispatch.core.records import Call

SHANGHAI = ZoneInfo("Asia/Shanghai")
PRIORITY_ZH = {Priority.URGENT: "紧急", Priority.NORMAL: "一般", Priority.LOW: "较低"}
ATTRIBUTES = ("priority",)
DEFAULT_DAYS = 90
MAX_RESULTS = 1000
Text = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]


def w3c(value: datetime | None) -> str | None:
    """A W3C datetime (ISO 8601 with the offset) in China Standard Time, as the spec's examples give."""
    return None if value is None else value.astimezone(SHANGHAI).isoformat(timespec="seconds")


def services(cfg: Config) -> list[dict[str, Any]]:
    """``services.json``: each configured category is a service; its group is its first department's name."""
    out = []
    for code, cat in cfg.categories.items():
        if cat.retired:
            continue  # no new requests for it
        group = cfg.departments[cat.route[0]].zh if cat.route else "其他"
        out.append({"service_code": code, "service_name": cat.zh, "description": f"{cat.zh}（{cat.en}）",
                    "metadata": True, "type": "realtime", "keywords": f"{cat.zh},{cat.en}", "group": group})
    return out


def definition(code: str) -> dict[str, Any]:
    """``services/{service_code}.json``: the one attribute a client may set, the priority."""
    return {"service_code": code, "attributes": [{
        "variable": True, "code": "priority", "datatype": "singlevaluelist", "required": False,
        "datatype_description": "紧急程度，默认“一般”", "order": 1, "description": "紧急程度",
        "values": [{"key": p.value, "name": PRIORITY_ZH[p]} for p in Priority],
    }]}


class PostRequest(BaseModel):
    """The fields of ``POST requests`` (form-encoded or JSON); ``attribute[code]`` arrive as ``attribute``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    api_key: str | None = None
    jurisdiction_id: Text | None = None
    service_code: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    lat: Annotated[float, Field(ge=-90, le=90)] | None = None
    long: Annotated[float, Field(ge=-180, le=180)] | None = None
    address_string: Annotated[str, StringConstraints(max_length=500)] | None = None
    address_id: Text | None = None
    email: Text | None = None
    device_id: Text | None = None
    account_id: Text | None = None
    first_name: Annotated[str, StringConstraints(max_length=25)] | None = None
    last_name: Annotated[str, StringConstraints(max_length=25)] | None = None
    phone: Annotated[str, StringConstraints(pattern=PHONE_PATTERN)] | None = None
    description: Annotated[str, StringConstraints(max_length=4000)] = ""
    media_url: Annotated[str, StringConstraints(max_length=1000, pattern=r"^https?://\S+$")] | None = None
    attribute: dict[str, str] = {}

    @model_validator(mode="before")
    @classmethod
    def _blank_is_none(cls, data: Any) -> Any:
        """A form sends every field it has, empty ones as ""; those mean "not given"."""
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if not (isinstance(v, str) and not v.strip())}
        return data

    @field_validator("attribute")
    @classmethod
    def _known(cls, value: dict[str, str]) -> dict[str, str]:
        for code, item in value.items():
            if code not in ATTRIBUTES:
                raise ValueError(f"unknown attribute {code!r} (this service has: {', '.join(ATTRIBUTES)})")
            if code == "priority" and item not in {p.value for p in Priority}:
                raise ValueError("priority must be one of urgent, normal, low")
        return value

    @model_validator(mode="after")
    def _located(self) -> PostRequest:
        if (self.lat is None) != (self.long is None):
            raise ValueError("lat and long must be given together")
        if self.lat is None and not self.address_string and not self.address_id:
            raise ValueError("a location is required: lat and long, address_string or address_id")
        return self

    @property
    def priority(self) -> Priority:
        return Priority(self.attribute.get("priority", Priority.NORMAL.value))

    def title(self, service_name: str) -> str:
        """The call's title: the description's first line, shortened, else the service's name."""
        first = next((line.strip() for line in self.description.splitlines() if line.strip()), "")
        return (first[:40] + "…") if len(first) > 40 else (first or service_name)

    def reporter_name(self) -> str | None:
        name = f"{self.last_name or ''}{self.first_name or ''}".strip()  # family name first, as in Chinese
        return name[:50] or None

    def call_description(self) -> str:
        """The description with the photo's link, which the hub never fetches (docs/INTAKE.md)."""
        if not self.media_url:
            return self.description
        suffix = f"\n图片链接：{self.media_url}"
        return self.description[: 4000 - len(suffix)] + suffix


def form_fields(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Form pairs as the model's input: ``attribute[code]=v`` under ``attribute``; a repeated key keeps its
    last value."""
    out: dict[str, Any] = {}
    attributes: dict[str, str] = {}
    for key, value in pairs:
        if key.startswith("attribute[") and key.endswith("]"):
            attributes[key[len("attribute["):-1]] = value
        else:
            out[key] = value
    if attributes:
        out["attribute"] = attributes
    return out


def service_request(call: Call, names: Mapping[str, str], details: Mapping[str, Any],
                    service_name: str) -> dict[str, Any]:
    """A call as a GeoReport v2 service request (``requests.json`` / ``requests/{id}.json``)."""
    return {
        "service_request_id": call.number,
        "status": "closed" if call.state in FINISHED else "open",
        "status_notes": status_text(call, names),
        "service_name": service_name,
        "service_code": call.category,
        "description": call.description,
        "agency_responsible": agency(call, names),
        "service_notice": None,
        "requested_datetime": w3c(call.created_at),
        "updated_datetime": w3c(call.updated_at),
        "expected_datetime": w3c(expected(call)),
        "address": call.address or None,
        "address_id": details.get("address_id"),
        "zipcode": None,
        "lat": call.lat,
        "long": call.lon,
        "media_url": details.get("media_url"),
    }


def error(code: int, description: str) -> list[dict[str, Any]]:
    return [{"code": code, "description": description}]


# -- XML: the spec's element names for each document ------------------------------------------------

XML_NAMES = {"services": ("services", "service"), "requests": ("service_requests", "request"),
             "errors": ("errors", "error")}


def _append(parent: ET.Element, key: str, value: Any) -> None:
    child = ET.SubElement(parent, key)
    if isinstance(value, bool):
        child.text = "true" if value else "false"
    elif value is not None:
        child.text = str(value)


def _document(root: ET.Element) -> bytes:
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + body


def to_xml(kind: str, rows: list[dict[str, Any]]) -> bytes:
    """``services``, ``requests`` (also a POST's answer) or ``errors`` as the spec's XML."""
    root_name, item_name = XML_NAMES[kind]
    root = ET.Element(root_name)
    for row in rows:
        item = ET.SubElement(root, item_name)
        for key, value in row.items():
            _append(item, key, value)
    return _document(root)


def definition_xml(doc: dict[str, Any]) -> bytes:
    root = ET.Element("service_definition")
    _append(root, "service_code", doc["service_code"])
    attrs = ET.SubElement(root, "attributes")
    for attr in doc["attributes"]:
        node = ET.SubElement(attrs, "attribute")
        for key, value in attr.items():
            if key == "values":
                values = ET.SubElement(node, "values")
                for v in value:
                    item = ET.SubElement(values, "value")
                    _append(item, "key", v["key"])
                    _append(item, "name", v["name"])
            else:
                _append(node, key, value)
    return _document(root)
