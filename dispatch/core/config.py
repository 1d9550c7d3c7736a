"""The TOML configuration: one file, validated on load; a bad file names the file, the key and the fault."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import math
import os
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from dispatch.core.domain import DEPARTMENTS, DeadlineKind, Priority, Source
from protocols.errors import ConfigError

DEFAULT_CONFIG_PATH = Path(__file__).with_name("default.toml")

Seconds = Annotated[float, Field(gt=0, le=366 * 86400)]
# Who is told (docs/NOTIFICATIONS.md): the assigned department's liaisons in the township, their team lead,
# the department head (county), the township's operators, its leader, the county supervisors; "county" is
# the department head, the township leader and the county supervisors together.
Audience = Literal["liaisons", "team_lead", "department_head", "operators", "leader", "supervisor", "county"]
Channel = Literal["webpush", "sms", "wecom", "dingtalk", "webhook"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerConfig(_Strict):
    console_origins: list[str] = []
    session_secret: str = ""
    session_days: Annotated[int, Field(ge=1, le=365)] = 14
    token_days: Annotated[int, Field(ge=1, le=3650)] = 90
    login_max_failures: Annotated[int, Field(ge=1, le=1000)] = 5
    login_address_max_failures: Annotated[int, Field(ge=1, le=100_000)] = 100
    login_account_max_failures: Annotated[int, Field(ge=1, le=100_000)] = 100
    login_window_s: Seconds = 300
    trusted_proxies: list[str] = []
    # "json": one JSON object a line (requests, published events, every other record); docs/OPERATIONS.md.
    log_format: Literal["text", "json"] = "text"
    # CPython's collector thresholds for `serve` (gc.set_threshold; docs/PERFORMANCE.md, "Garbage collection"):
    # young passes every 50,000 allocations instead of 700, so a request's or an event's short-lived objects die
    # young instead of being promoted, and the full passes over every socket's objects come far more rarely.
    gc_thresholds: tuple[Annotated[int, Field(ge=700, le=10_000_000)], Annotated[int, Field(ge=1, le=1000)],
                         Annotated[int, Field(ge=1, le=1000)]] = (50_000, 20, 10)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or CIDR network (10.0.0.0/8)") from None
        return value


class RealtimeConfig(_Strict):
    max_frame_bytes: Annotated[int, Field(ge=1024, le=16 * 1024 * 1024)] = 65536
    rate_per_s: Annotated[float, Field(gt=0, le=10000)] = 20.0
    burst: Annotated[int, Field(ge=1, le=100000)] = 40
    heartbeat_s: Annotated[float, Field(ge=1, le=3600)] = 20.0
    outbox_frames: Annotated[int, Field(ge=10, le=1_000_000)] = 2000
    replay_batch: Annotated[int, Field(ge=10, le=100_000)] = 500
    replay_limit: Annotated[int, Field(ge=100, le=100_000_000)] = 100_000
    max_sockets_per_user: Annotated[int, Field(ge=1, le=1_000_000)] = 5


class Within(_Strict):
    ack: Seconds
    arrive: Seconds
    resolve: Seconds

    @model_validator(mode="after")
    def _ordered(self) -> Within:
        if not self.ack <= self.arrive <= self.resolve:
            raise ValueError("deadlines must satisfy ack <= arrive <= resolve")
        return self


class PartialWithin(_Strict):
    ack: Seconds | None = None
    arrive: Seconds | None = None
    resolve: Seconds | None = None


class Rung(_Strict):
    after_s: Annotated[float, Field(ge=0, le=30 * 86400)]
    notify: Annotated[list[Audience], Field(min_length=1)]
    # Tell them again every repeat_every_s, up to repeat_count more times, while the clock still runs.
    repeat_every_s: Annotated[float, Field(ge=10, le=86400)] = 300.0
    repeat_count: Annotated[int, Field(ge=0, le=20)] = 0


class SlaConfig(_Strict):
    sweep_s: Annotated[float, Field(ge=0.05, le=3600)] = 30.0
    horizon_s: Annotated[float, Field(ge=0.1, le=86400)] = 120.0
    # The operator's deadline to approve or reject a transfer request (转), from the request.
    transfer_review_s: Seconds = 1800.0
    within: dict[Priority, Within]
    department: dict[str, dict[Priority, PartialWithin]] = {}
    category: dict[str, dict[Priority, PartialWithin]] = {}
    ladder: dict[DeadlineKind, Annotated[list[Rung], Field(min_length=1, max_length=10)]]

    @model_validator(mode="before")
    @classmethod
    def _review_ladder(cls, data: object) -> object:
        """A configuration written before the review clock existed escalates to the operators at once."""
        if isinstance(data, dict) and isinstance(data.get("ladder"), dict) and "review" not in data["ladder"]:
            return {**data, "ladder": {**data["ladder"], "review": [{"after_s": 0, "notify": ["operators"]}]}}
        return data

    @model_validator(mode="after")
    def _complete(self) -> SlaConfig:
        for p in Priority:
            if p not in self.within:
                raise ValueError(f"within.{p}: missing")
        for k in DeadlineKind:
            if k not in self.ladder:
                raise ValueError(f"ladder.{k}: missing")
            steps = [r.after_s for r in self.ladder[k]]
            if steps != sorted(steps):
                raise ValueError(f"ladder.{k}: after_s must not decrease from one level to the next")
        if self.horizon_s < self.sweep_s:
            raise ValueError("horizon_s must be at least sweep_s, or deadlines fall between sweeps")
        return self


Weight = Annotated[float, Field(ge=0, le=1)]


class Weights(_Strict):
    """Weights of the composite score 综合得分 over the named rates (docs/EVALUATION.md); they add up to 1."""

    response_rate: Weight = 0.0  # 响应率
    arrive_rate: Weight = 0.0  # 到场及时率
    result_rate: Weight = 0.0  # 办结及时率
    resolution_rate: Weight = 0.0  # 解决率
    satisfaction_rate: Weight = 0.0  # 满意率

    @model_validator(mode="after")
    def _sum(self) -> Weights:
        total = sum(self.model_dump().values())
        if not math.isclose(total, 1.0, abs_tol=1e-9):
            raise ValueError(f"weights must add up to 1.0, they add up to {total:g}")
        return self


DEFAULT_PRESETS = {
    "three_rates": Weights(response_rate=0.3, resolution_rate=0.35, satisfaction_rate=0.35),
    "timeliness": Weights(response_rate=0.3, arrive_rate=0.2, result_rate=0.3, satisfaction_rate=0.2),
    "outcome": Weights(response_rate=0.2, resolution_rate=0.4, satisfaction_rate=0.4),
}


class EvaluationConfig(_Strict):
    preset: Annotated[str, Field(min_length=1, max_length=50)] = "three_rates"
    presets: Annotated[dict[str, Weights], Field(min_length=1, max_length=20)] = DEFAULT_PRESETS

    @model_validator(mode="after")
    def _known(self) -> EvaluationConfig:
        if self.preset not in self.presets:
            raise ValueError(f"preset: {self.preset!r} is not one of the presets ({', '.join(self.presets)})")
        return self

    def weights(self, preset: str | None = None) -> dict[str, float]:
        return self.presets[preset or self.preset].model_dump()


class SmsGateway(_Strict):
    """An HTTP SMS gateway: one request per message, the template filled with the number and the text."""

    url: Annotated[str, Field(pattern=r"^https?://", max_length=2000)]
    method: Literal["POST", "GET"] = "POST"
    headers: dict[str, str] = {}
    # JSON body (POST) with {phone} and {text} placeholders, or query parameters (GET) likewise.
    template: Annotated[str, Field(max_length=4000)] = '{"phone": "{phone}", "text": "{text}"}'
    ok_statuses: list[int] = [200, 201, 202, 204]


class Robot(_Strict):
    """A WeCom (企业微信) or DingTalk (钉钉) group robot, or a generic signed webhook."""

    kind: Literal["wecom", "dingtalk", "webhook"]
    name: Annotated[str, Field(min_length=1, max_length=100)]
    url: Annotated[str, Field(pattern=r"^https?://", max_length=2000)]
    # DingTalk "加签" secret (timestamp+sign query), or the webhook's HMAC-SHA256 key.
    secret: Annotated[str, Field(max_length=500)] = ""
    townships: list[str] = []  # township codes; empty: every township
    departments: list[str] = []  # targets (department codes); empty: every target
    reasons: list[str] = []  # notice reasons it carries; empty: every reason


class WebPushConfig(_Strict):
    # Who runs this hub, for the push services (the VAPID `sub` claim): mailto:address or an https URL.
    subject: Annotated[str, Field(pattern=r"^(mailto:[^@\s]+@[^@\s]+|https://[^\s/]+)$", max_length=500)] = (
        "mailto:ops@xianghu.invalid")
    # The VAPID private key: the raw P-256 scalar, 32 bytes in base64url. Empty: generated once and kept in
    # the database (every node signs with the same key, or the push services refuse the other nodes' pushes).
    private_key: Annotated[str, Field(max_length=500)] = ""
    ttl_s: Annotated[int, Field(ge=0, le=2419200)] = 3600  # how long a push service keeps an undelivered message

    @field_validator("private_key")
    @classmethod
    def _raw_p256(cls, value: str) -> str:
        if not value:
            return value
        try:
            raw = base64.urlsafe_b64decode(value.strip() + "=" * (-len(value.strip()) % 4))
        except (ValueError, binascii.Error):
            raise ValueError("must be base64url (the raw 32-byte P-256 private key)") from None
        if len(raw) != 32:
            raise ValueError(f"must be the raw 32-byte P-256 private key in base64url, not {len(raw)} bytes")
        return value.strip()


class NotifyConfig(_Strict):
    channels: list[Channel] = []  # besides the consoles' WebSocket, which is always on
    on_dispatch: list[Audience] = ["liaisons"]
    on_nudge: list[Audience] = ["liaisons", "team_lead"]
    # A send-back, withdrawal, cancellation or rejected transfer request reaches the department with its reason.
    on_return: list[Audience] = ["liaisons"]
    retry_initial_s: Annotated[float, Field(ge=0.05, le=3600)] = 2.0
    retry_max_s: Annotated[float, Field(ge=0.05, le=86400)] = 300.0
    give_up_after_s: Annotated[float, Field(ge=1, le=30 * 86400)] = 86400.0
    timeout_s: Annotated[float, Field(ge=0.1, le=120)] = 10.0
    sweep_s: Annotated[float, Field(ge=0.05, le=3600)] = 5.0
    sms: SmsGateway | None = None
    robots: Annotated[list[Robot], Field(max_length=100)] = []
    webpush: WebPushConfig = WebPushConfig()

    @model_validator(mode="after")
    def _configured(self) -> NotifyConfig:
        if "sms" in self.channels and self.sms is None:
            raise ValueError("channels: sms is on but [notify.sms] is missing")
        for kind in ("wecom", "dingtalk", "webhook"):
            if kind in self.channels and not any(r.kind == kind for r in self.robots):
                raise ValueError(f"channels: {kind} is on but no [[notify.robots]] of kind {kind!r}")
        return self


class LifecycleConfig(_Strict):
    # Intake sources whose calls need a reason to close without a return visit (12345 always does).
    close_without_visit_reason: list[Source] = [Source.HOTLINE_12345]

    @field_validator("close_without_visit_reason")
    @classmethod
    def _hotline_always(cls, value: list[Source]) -> list[Source]:
        return value if Source.HOTLINE_12345 in value else [Source.HOTLINE_12345, *value]

    # How old an acted time sent by an offline phone may be (seconds before the hub receives it).
    offline_window_s: Annotated[float, Field(ge=60, le=30 * 86400)] = 86400.0


MIN_TOKEN_CHARS = 16


class MetricsConfig(_Strict):
    """Who may scrape ``/metrics`` (docs/OPERATIONS.md): a bearer token, a listener of its own, or both.
    Neither: ``/metrics`` is off (404)."""

    token: Annotated[str, Field(max_length=500)] = ""
    # A file holding the token (its first line); relative to the configuration file's folder.
    token_file: Annotated[str, Field(max_length=4000)] = ""
    host: Annotated[str, Field(min_length=1, max_length=253)] = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 0  # 0: no listener of its own
    _bearer: str = PrivateAttr("")

    @field_validator("token")
    @classmethod
    def _strong(cls, value: str) -> str:
        if value and (len(value) < MIN_TOKEN_CHARS or any(c.isspace() for c in value)):
            raise ValueError(f"must be at least {MIN_TOKEN_CHARS} characters without spaces")
        return value

    @field_validator("host")
    @classmethod
    def _address(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            if not all(part and part.replace("-", "").isalnum() for part in value.split(".")):
                raise ValueError(f"{value!r} is not an IP address or host name") from None
        return value

    @model_validator(mode="after")
    def _read_token(self, info: ValidationInfo) -> MetricsConfig:
        if self.token and self.token_file:
            raise ValueError("token and token_file: give one of them, not both")
        self._bearer = self.token
        if self.token_file:
            base = (info.context or {}).get("base") if isinstance(info.context, dict) else None
            path = Path(self.token_file)
            if not path.is_absolute() and base is not None:
                path = Path(base) / path
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                raise ValueError(f"token_file: cannot read {path}: {exc.__class__.__name__}") from None
            token = lines[0].strip() if lines else ""
            if len(token) < MIN_TOKEN_CHARS or any(c.isspace() for c in token):
                raise ValueError(f"token_file: {path} must hold a token of at least {MIN_TOKEN_CHARS} "
                                 "characters without spaces on its first line")
            self._bearer = token
        return self

    @property
    def bearer(self) -> str:
        """The token a scrape must present (from ``token`` or ``token_file``); empty: none."""
        return self._bearer
class PrivacyConfig(_Strict):
    # Reporters' names and phones of calls closed (or cancelled) more than this many days ago are erased once a
    # day by the hub (docs/CONFIGURATION.md); 0: never (erase by hand with ``xianghu erase --before``).
    retention_days: Annotated[int, Field(ge=0, le=36500)] = 0


class AttachmentsConfig(_Strict):
    """Photos and PDFs as evidence (docs/CONFIGURATION.md, [attachments])."""

    # Where the bytes live: in PostgreSQL (bytea), or in ``folder`` as files named by their SHA-256.
    store: Literal["database", "folder"] = "database"
    folder: Annotated[str, Field(max_length=1000)] = ""
    max_bytes: Annotated[int, Field(ge=1024, le=100 * 1024 * 1024)] = 10 * 1024 * 1024
    # Decoded size limit against decompression bombs (a small file that unpacks to gigabytes).
    max_pixels: Annotated[int, Field(ge=10_000, le=200_000_000)] = 40_000_000
    thumbnail_px: Annotated[int, Field(ge=64, le=2048)] = 320
    # An upload no command has referenced after this long is removed.
    unbound_ttl_s: Annotated[float, Field(ge=60, le=30 * 86400)] = 86400.0

    @model_validator(mode="after")
    def _folder(self) -> AttachmentsConfig:
        if self.store == "folder" and not self.folder:
            raise ValueError("folder: store = \"folder\" needs a folder path")
        return self


class Names(_Strict):
    zh: Annotated[str, Field(min_length=1, max_length=50)]
    en: Annotated[str, Field(min_length=1, max_length=100)]


class Category(Names):
    route: list[str] = []
    # Kept for the calls that name it, refused for new ones (an admin retires a category in use instead of
    # removing it; docs/CONFIGURATION.md "Settings in the database").
    retired: bool = False


Ladder = dict[DeadlineKind, tuple[Rung, ...]]


class Config(_Strict):
    server: ServerConfig = ServerConfig()
    realtime: RealtimeConfig = RealtimeConfig()
    sla: SlaConfig
    evaluation: EvaluationConfig = EvaluationConfig()
    lifecycle: LifecycleConfig = LifecycleConfig()
    notify: NotifyConfig = NotifyConfig()
    metrics: MetricsConfig = MetricsConfig()
    attachments: AttachmentsConfig = AttachmentsConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    departments: dict[str, Names]
    categories: Annotated[dict[str, Category], Field(min_length=1)]
    # Set by dispatch.core.settings.effective: each administrable section's version (0: the file's), and the
    # escalation ladder of every SLA version, so a clock keeps the ladder it was started under.
    _versions: dict[str, int] = PrivateAttr(default_factory=dict)
    _ladders: dict[int, Ladder] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _references(self) -> Config:
        if set(self.departments) != set(DEPARTMENTS):
            missing = sorted(set(DEPARTMENTS) - set(self.departments))
            extra = sorted(set(self.departments) - set(DEPARTMENTS))
            raise ValueError(f"departments: must be exactly {', '.join(DEPARTMENTS)}"
                             + (f"; missing {', '.join(missing)}" if missing else "")
                             + (f"; unknown {', '.join(extra)}" if extra else ""))
        for code, cat in self.categories.items():
            for dep in cat.route:
                if dep not in self.departments:
                    raise ValueError(f"categories.{code}.route: unknown department {dep!r}")
        for dep in self.sla.department:
            if dep not in self.departments:
                raise ValueError(f"sla.department.{dep}: unknown department")
        for cat_code in self.sla.category:
            if cat_code not in self.categories:
                raise ValueError(f"sla.category.{cat_code}: unknown category")
        return self

    # -- lookups used by the core -------------------------------------------------------------

    def within(self, kind: DeadlineKind, priority: Priority, target: str, category: str) -> timedelta:
        """Deadline for one kind: category override, else department override, else the priority default."""
        for table, key in ((self.sla.category, category), (self.sla.department, target)):
            override = table.get(key, {}).get(priority)
            value = getattr(override, str(kind), None) if override else None
            if value is not None:
                return timedelta(seconds=value)
        return timedelta(seconds=getattr(self.sla.within[Priority(priority)], str(kind)))

    def version(self, section: str) -> int:
        """The version of an administrable section in effect (0: the file's, no change in the database)."""
        return self._private["_versions"].get(section, 0)  # type: ignore[no-any-return]

    def ladder(self, kind: DeadlineKind, version: int | None = None) -> tuple[Rung, ...]:
        """The escalation ladder of ``kind`` under SLA policy ``version`` (None: the current one). A version
        this node has not loaded yet (another node just saved it) is the current one until it has."""
        if version is not None and version != self.version("sla"):
            known = self._private["_ladders"].get(version)
            if known is not None:
                return known[kind]  # type: ignore[no-any-return]
        return tuple(self.sla.ladder[kind])

    @property
    def _private(self) -> dict[str, Any]:
        """The private attributes, read without pydantic's ``__getattr__`` (microseconds a read: ``ladder`` and
        ``version`` are asked several times a command, for each assignment's next escalation)."""
        private = self.__pydantic_private__
        assert private is not None
        return private

    def rung_after(self, kind: DeadlineKind, level: int, version: int | None = None) -> timedelta:
        """How long after its deadline escalation ``level`` (1-based) of ``kind`` falls due."""
        ladder = self.ladder(kind, version)
        return timedelta(seconds=ladder[min(level, len(ladder)) - 1].after_s)

    def route(self, category: str) -> list[str]:
        cat = self.categories.get(category)
        return list(cat.route) if cat else []

    def open_categories(self) -> frozenset[str]:
        """The categories a new call may have (not retired)."""
        return frozenset(code for code, cat in self.categories.items() if not cat.retired)


def _describe(err: ValidationError) -> str:
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"] if p not in ("function-after",))
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    return f"{loc}: {msg}" if loc else msg


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Load and validate; with no path, ``XIANGHU_CONFIG`` or the shipped default."""
    chosen = Path(path or os.environ.get("XIANGHU_CONFIG") or DEFAULT_CONFIG_PATH)
    try:
        raw = tomllib.loads(chosen.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{chosen}: file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{chosen}: not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{chosen}: cannot read: {exc}") from None
    try:
        return Config.model_validate(raw, context={"base": chosen.resolve().parent})
    except ValidationError as exc:
        raise ConfigError(f"{chosen}: {_describe(exc)}") from None
