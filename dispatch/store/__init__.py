"""PostgreSQL: the connection pool, the embedded server, migrations, the one write path (``writer``),
the hash-chained event log, accounts and sessions, and reference data synced from the configuration.

Owns: every SQL statement that changes the record, and the per-township lock that orders events.
Promises: a command's events, projections and idempotency row commit together or not at all.
Must not import: ``realtime``, ``timers``, ``web``, ``cli``, ``node`` (it sits just above ``core``).
"""
