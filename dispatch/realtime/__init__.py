"""Real-time delivery: the WebSocket endpoint, one ``Socket`` per connection, the node's fan-out
(LISTEN/NOTIFY wake-ups, reads in sequence order) and presence.

Owns: replay and live delivery in per-township sequence order; bounded outboxes; heartbeats.
Promises: a client that resumes from its last sequence misses nothing and sees nothing twice.
Must not import: ``timers``, ``web``, ``cli``.
"""
