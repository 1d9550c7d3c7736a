"""Xianghu benchmark harness (``./scripts/bench``): speed, scale and memory against the machine's limits.

The orchestrator (``__main__``) starts an embedded PostgreSQL in a temporary folder, runs ``xianghu migrate``
and ``xianghu seed-demo`` against it, serves the hub with ``xianghu serve`` (uvicorn + uvloop + websockets sans-I/O)
in its own process, and drives load from separate generator processes (``gen``). See docs/PERFORMANCE.md.
"""
