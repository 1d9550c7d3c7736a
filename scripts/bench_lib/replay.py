"""The commit ceiling: the hub's own create-call transaction, replayed from raw asyncpg.

``record`` runs the product's ``Store.execute(create_call)`` once per township through a pool that writes down
every statement and its arguments (the second call of each township, so the store's caches are warm, as in a
running hub). ``replay`` then runs those statements, in order, in one transaction each, on plain asyncpg
connections (the product's connection set-up: its jsonb codecs), with fresh ids: every UUID of the recorded
transaction is replaced by a new one, the call number by the one the replayed lock (or ``NEXT_CALL_NUMBER``)
draws, and the event sequence numbers by the ones following the head the replayed lock returns. Runs in a copy of
the database, whose heads were moved to ``SEQ_BASE`` before recording so that sequence numbers cannot be mistaken
for other integers. No Python domain code (decide, evolve, hashing) runs during the replay: what is left is the
database's work for a call plus asyncpg's.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import random
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg

from dispatch.store.pool import JsonText
from dispatch.store.writer import new_id

SEQ_BASE = 900_000_000
SEQ_SPAN = 1_000  # a transaction appends fewer events than this
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
SEQ_RE = re.compile(r"\b9000\d{5}\b")

Statement = tuple[str, str, tuple[Any, ...]]  # (method, query, args)


class RawJson(str):
    """A json/jsonb argument already encoded at record time: the replay's codec sends it as it is, so a replayed
    transaction costs no ``json.dumps`` of the documents, only the renumbering of their text."""


def _encode_json(value: Any) -> str:
    if isinstance(value, RawJson):
        return str(value)
    if isinstance(value, list) and value and all(isinstance(x, RawJson) for x in value):
        return "[" + ",".join(value) + "]"  # a jsonb array of rows (the write path's FINISH_COMMAND)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def compile_args(v: Any) -> Any:
    """Dicts (json/jsonb arguments: asyncpg maps nothing else to a dict) become ``RawJson`` text, once; so do
    documents the write path encoded itself (``pool.JsonText``)."""
    if isinstance(v, JsonText):
        return RawJson(v)
    if isinstance(v, dict):
        return RawJson(_encode_json(v))
    if isinstance(v, tuple | list):
        return type(v)(compile_args(x) for x in v)
    return v


class _Recorder:
    def __init__(self, conn: Any, log: list[Statement]) -> None:
        self._conn = conn
        self._log = log

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def _rec(self, method: str) -> Any:
        async def call(query: str, *args: Any, **kw: Any) -> Any:
            self._log.append((method, query, args))
            return await getattr(self._conn, method)(query, *args, **kw)
        return call

    def __getattribute__(self, name: str) -> Any:
        if name in ("execute", "executemany", "fetch", "fetchrow", "fetchval"):
            return object.__getattribute__(self, "_rec")(name)
        return object.__getattribute__(self, name)


class _RecordingPool:
    def __init__(self, pool: Any) -> None:
        self._pool = pool
        self.log: list[Statement] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[Any]:
        async with self._pool.acquire() as conn:
            yield _Recorder(conn, self.log)


async def record(dsn: str, township_ids: list[int],
                 body: dict[str, Any]) -> tuple[dict[int, list[Statement]], dict[int, str], dict[int, int]]:
    """One recorded create-call transaction per township (its first operator), the call number each made and the
    head its lock read."""
    from dispatch.core.clock import SystemClock
    from dispatch.core.commands import parse_command
    from dispatch.core.config import load_config
    from dispatch.core.domain import Actor, Role
    from dispatch.store import pool as db
    from dispatch.store.writer import Store

    cfg = load_config()
    pool = await db.create_pool(dsn, min_size=1, max_size=2)
    try:
        await pool.execute("update township_heads set seq = $1", SEQ_BASE)
        rec = _RecordingPool(pool)
        store = Store(rec, cfg, SystemClock())  # type: ignore[arg-type]
        out: dict[int, list[Statement]] = {}
        numbers: dict[int, str] = {}
        heads: dict[int, int] = {}
        for tid in township_ids:
            row = await pool.fetchrow("select id, display_name from users where role = 'operator' "
                                      "and township_id = $1 order by id limit 1", tid)
            if row is None:
                raise RuntimeError(f"township {tid} has no operator to record a call with")
            actor = Actor(user_id=row["id"], role=Role.OPERATOR, township_id=tid, name=row["display_name"])
            for _ in range(2):  # the second: the store's per-township caches are warm
                heads[tid] = await pool.fetchval("select seq from township_heads where township_id = $1", tid)
                rec.log = []
                cmd = parse_command("create_call", {**body, "command_id": str(uuid.uuid4())})
                outcome = await store.execute(actor, cmd)
            out[tid] = rec.log
            numbers[tid] = outcome.result["number"]
        return out, numbers, heads
    finally:
        await pool.close()


def _fresh(old: str) -> str:
    """A new id of the recorded one's kind: time-ordered for a call's or an assignment's (``writer.new_id``),
    random for a client's command id, as the product writes them."""
    return str(new_id() if uuid.UUID(old).version == 7 else uuid.uuid4())


def _subst(v: Any, ids: dict[str, str], shift: int, number: tuple[str, str] | None) -> Any:
    if isinstance(v, uuid.UUID):
        key = str(v)
        return uuid.UUID(ids[key] if key in ids else ids.setdefault(key, _fresh(key)))
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, int):
        return v + shift if SEQ_BASE < v <= SEQ_BASE + SEQ_SPAN else v
    if isinstance(v, str):
        raw = isinstance(v, RawJson)
        if "-" in v:
            v = UUID_RE.sub(lambda m: ids[m.group(0)] if m.group(0) in ids else ids.setdefault(m.group(0),
                                                                                                _fresh(m.group(0))), v)
            if number is not None and number[0] in v:
                v = v.replace(number[0], number[1])
        if shift and "9000" in v:
            v = SEQ_RE.sub(lambda m: str(int(m.group(0)) + shift) if int(m.group(0)) > SEQ_BASE else m.group(0), v)
        return RawJson(v) if raw else v
    if isinstance(v, tuple | list):
        return type(v)(_subst(x, ids, shift, number) for x in v)
    if isinstance(v, dict):
        return {k: _subst(x, ids, shift, number) for k, x in v.items()}
    return v


async def replay(dsn: str, templates: dict[int, list[Statement]], numbers: dict[int, str], heads: dict[int, int],
                 concurrency: int, seconds: float,
                 on_start: Callable[[], None] = lambda: None) -> tuple[int, float, dict[str, int]]:
    """Replay for ``seconds`` on ``concurrency`` connections after a warm-up (``on_start`` is called between);
    return (transactions committed, wall s, errors).
    ``numbers``: the recorded call number of each township's template."""
    from dispatch.core.numbering import format_number, numbering_year

    codes = {}
    templates = {tid: [(m, q, compile_args(a)) for m, q, a in log] for tid, log in templates.items()}
    conns = [await asyncpg.connect(dsn) for _ in range(concurrency)]
    try:
        for c in conns:  # the product's codecs (dispatch.store.pool), with documents encoded beforehand
            for typename in ("json", "jsonb"):
                await c.set_type_codec(typename, encoder=_encode_json, decoder=json.loads, schema="pg_catalog")
        for r in await conns[0].fetch("select id, code from townships"):
            codes[r["id"]] = r["code"]
        tids = list(templates)
        rnd = random.Random(5)
        done = 0
        errors: dict[str, int] = {}

        async def one(conn: Any, tid: int) -> None:
            ids: dict[str, str] = {}
            shift = 0
            number: tuple[str, str] | None = None
            async with conn.transaction():
                for method, query, args in templates[tid]:
                    res = await getattr(conn, method)(query, *_subst(args, ids, shift, number))
                    if "for update" in query and "township_heads" in query:
                        shift = res["seq"] - heads[tid]
                    if "call_numbers" in query:  # its own statement, or drawn with the lock (``res["number"]``)
                        last = res["number"] if isinstance(res, asyncpg.Record) else res
                        year = numbering_year(dt.datetime.now(dt.UTC))
                        number = (numbers[tid], format_number(codes[tid], year, last))

        async def lane(conn: Any, end: float) -> None:
            nonlocal done
            while time.monotonic() < end:
                try:
                    await one(conn, rnd.choice(tids))
                    done += 1
                except Exception as exc:
                    key = type(exc).__name__ + ": " + str(exc)[:80]
                    errors[key] = errors.get(key, 0) + 1
                    if sum(errors.values()) > 50:
                        raise
        # Warm-up, not counted: every connection prepares every statement (asyncpg's statement cache, the
        # backends' catalog caches), as a running hub's pool connections have long done.
        for tid in tids:
            await asyncio.gather(*(one(c, tid) for c in conns))
        on_start()
        done = 0
        t0 = time.monotonic()
        await asyncio.gather(*(lane(c, t0 + seconds) for c in conns))
        return done, time.monotonic() - t0, errors
    finally:
        for c in conns:
            await c.close()
