"""The Starlette app: routing with validated bodies, REST endpoints, the OpenAPI document, static
console files, and the assembly that starts a node's services (``services``).

Owns: HTTP status codes and JSON error bodies; which route serves what.
Promises: every REST command is authorised server-side through ``core.policy`` like its WebSocket twin.
Must not import: ``cli``. It may import ``realtime`` and ``timers`` only to assemble them (``app``, ``services``).
"""
