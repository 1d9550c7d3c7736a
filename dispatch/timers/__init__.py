"""The SLA engine: APScheduler jobs armed from the deadlines stored in PostgreSQL, fired as claimed
escalations through the store's write path.

Owns: arming within a horizon, the periodic sweep, firing and draining.
Promises: each rung is escalated once across every node (the claim is a conditional update).
Must not import: ``realtime``, ``web``, ``cli``.
"""
