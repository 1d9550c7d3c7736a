"""The sans-I/O core: domain vocabulary, configuration, commands, the lifecycle (records, transition
tables, ``decide``/``evolve``), authorisation policy, SLA rules and the clock.

Owns: every rule of the domain, as plain synchronous code (commands in, events out; no ``await``).
Promises: deterministic results for the same inputs and clock; tables checked at import.
Must not import: any I/O library (asyncpg, starlette, websockets, apscheduler, httpx, uvicorn) nor any
other ``dispatch`` sub-package. It may import ``protocols`` (the error tree and wire types).
"""
