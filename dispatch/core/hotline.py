"""The 12345 hotline's webhook as data: the ticket it sends, how a request is signed and when a signature
is too old, and the command id a ticket is created under (docs/INTAKE.md)."""

from __future__ import annotations

import hmac
import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from dispatch.core.commands import PHONE_PATTERN, Address, Description, PersonName
from dispatch.core.domain import Priority

WINDOW_S = 300  # a timestamp further than this from the hub's clock is refused
REPLAY_KEEP_S = 600  # signatures are remembered this long (longer than the window, so a replay is caught)
TICKET_NAMESPACE = uuid.UUID("8f1e3a52-5a61-4f5e-9a57-12345a1b2c3d")


class HotlineTicket(BaseModel):
    """``POST /api/v1/intake/hotline``: one 12345 work order (工单)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    ticket_id: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")]
    category: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(
        description="a category code of the configuration, or its Chinese name")
    title: Annotated[str, StringConstraints(max_length=200)] = ""
    description: Description = ""
    address: Address = ""
    lat: Annotated[float, Field(ge=-90, le=90)] | None = None
    lon: Annotated[float, Field(ge=-180, le=180)] | None = None
    reporter_name: PersonName | None = None
    reporter_phone: Annotated[str, StringConstraints(pattern=PHONE_PATTERN)] | None = None
    priority: Priority = Priority.NORMAL
    township: Annotated[str, StringConstraints(max_length=64)] | None = Field(
        default=None, description="township code; optional when the integration is bound or lat/lon fall in one")
    reported_at: AwareDatetime | None = None

    @model_validator(mode="before")
    @classmethod
    def _blank_is_none(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: (None if isinstance(v, str) and not v.strip() and k in ("reporter_name", "reporter_phone",
                                                                                 "township") else v)
                    for k, v in data.items()}
        return data

    @model_validator(mode="after")
    def _checked(self) -> HotlineTicket:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat and lon must be given together")
        if not self.title and not self.description:
            raise ValueError("a title or a description is required")
        return self

    def call_title(self) -> str:
        if self.title:
            return self.title
        first = next((line.strip() for line in self.description.splitlines() if line.strip()), "")
        return (first[:40] + "…") if len(first) > 40 else first


def command_id(integration_id: uuid.UUID, ticket_id: str) -> uuid.UUID:
    """The create_call command id of a ticket: a retry of the same ticket is the same command."""
    return uuid.uuid5(TICKET_NAMESPACE, f"{integration_id}:{ticket_id}")


def fresh(timestamp: str, now: datetime) -> bool:
    """Whether a ``X-Xianghu-Timestamp`` (unix seconds) is within ``WINDOW_S`` of ``now``."""
    if not timestamp.isdigit() or len(timestamp) > 12:
        return False
    return abs(now.timestamp() - int(timestamp)) <= WINDOW_S


def signature_matches(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.encode())
