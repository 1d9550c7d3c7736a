"""One error tree with stable codes, shared by the hub, the wire protocol and the REST API.

``ClientError`` subclasses are the caller's fault: they become a wire ``error`` frame or a 4xx JSON
body ``{code, message, field}``. Anything else is internal: logged, and the client is told only
``internal``. Codes are stable strings documented in protocols/PROTOCOL.md; each is registered once.
"""

from __future__ import annotations

from typing import Any, ClassVar

from protocols.localize import Lang, localize

_REGISTRY: dict[str, type[XianghuError]] = {}


class XianghuError(Exception):
    """Root of every error the project raises on purpose."""

    code: ClassVar[str] = "internal"
    status: ClassVar[int] = 500

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        # What the client is told besides the message, for its language (a refused transition: the command,
        # and who put the call in its state and when — set by the store, which can read the timeline).
        self.context: dict[str, Any] | None = None

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        code = cls.__dict__.get("code")
        if code is None:
            return
        if code in _REGISTRY:
            raise TypeError(
                f"error code {code!r} registered twice ({_REGISTRY[code].__name__}, {cls.__name__})"
            )
        _REGISTRY[code] = cls

    def localized(self, lang: Lang) -> str:
        """The message in ``lang`` (protocols/localize.py); ``code`` and ``field`` do not change."""
        return localize(self.code, self.message, self.field, lang, self.context)

    def to_dict(self, lang: Lang = "en") -> dict[str, str | None]:
        return {"code": self.code, "message": self.localized(lang), "field": self.field}


class InternalError(XianghuError):
    """A fault of ours; the client sees only a generic message."""

    code = "internal"
    status = 500


class ClientError(XianghuError):
    """Base of errors caused by the request; never logged as a fault."""

    status = 400


class BadRequest(ClientError):
    code = "bad_request"
    status = 400


class ValidationFailed(ClientError):
    code = "validation"
    status = 422


class Unauthenticated(ClientError):
    code = "unauthenticated"
    status = 401


class Forbidden(ClientError):
    code = "forbidden"
    status = 403


class NotFound(ClientError):
    code = "not_found"
    status = 404


class PayloadTooLarge(ClientError):
    """A request body over the size limit (refused before or while it is read)."""

    code = "payload_too_large"
    status = 413


class Conflict(ClientError):
    code = "conflict"
    status = 409


class IllegalTransition(Conflict):
    """A command the state machine does not allow in the current state."""

    code = "illegal_transition"


class CommandIdReused(Conflict):
    """The same command_id was sent again with a different payload."""

    code = "command_id_reused"


class RateLimited(ClientError):
    code = "rate_limited"
    status = 429

    def __init__(self, message: str, *, retry_after: float, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.retry_after = retry_after


class Unavailable(XianghuError):
    """A part the hub needs (the database) is unreachable for now: nothing was done; retry later."""

    code = "unavailable"
    status = 503

    def __init__(self, message: str, *, retry_after: float = 1.0, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.retry_after = retry_after


class UndeliverableEvent(XianghuError):
    """An event that cannot be encoded for delivery (sent in its place; the call can be reloaded)."""

    code = "undeliverable_event"
    status = 500


class ProtocolViolation(ClientError):
    """A WebSocket frame that breaks the wire contract (not msgpack, wrong shape, unknown type)."""

    code = "protocol"
    status = 400


class InvalidMessage(ProtocolViolation):
    """A msgpack map that is not a valid message; keeps a readable ``command_id`` for the error frame."""

    def __init__(self, message: str, *, field: str | None = None, command_id: str | None = None) -> None:
        super().__init__(message, field=field)
        self.command_id = command_id


class FrameTooLarge(ProtocolViolation):
    code = "frame_too_large"


class ConfigError(XianghuError):
    """A configuration file that cannot be used; names the file and the key."""

    code = "config"
    status = 500


class SchemaTooNew(XianghuError):
    code = "schema_too_new"
    status = 503


def error_codes() -> dict[str, type[XianghuError]]:
    """Every registered code, for documentation checks."""
    return dict(_REGISTRY)
