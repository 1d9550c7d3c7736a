"""``xianghu township|grid|station|unit …``: the county's reference data from the command line, through the same
store functions as the admin console (``dispatch/store/county.py``): logged, and in effect on every node at once."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from dispatch.cli.common import _with_conn, data_option
from dispatch.store import adminlog, county
from dispatch.store.pool import Conn

boundary_option = click.option(
    "--boundary", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
    help="A GeoJSON file: a Polygon or MultiPolygon geometry (or a Feature holding one), [lon, lat] in WGS 84.")


def _now() -> datetime:
    return datetime.now(UTC)


def _geometry(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise click.BadParameter(f"{path}: not JSON: {exc}", param_hint="--boundary") from None
    if isinstance(doc, dict) and doc.get("type") == "Feature":
        doc = doc.get("geometry")
    if not isinstance(doc, dict):
        raise click.BadParameter(f"{path}: not a GeoJSON geometry", param_hint="--boundary")
    return doc


@click.group()
def township() -> None:
    """Townships (镇街): add, rename, set a boundary, list."""


@township.command("list")
@data_option
def township_list(data_dir: Path | None) -> None:
    """Every township with its stations, grids and units (tab-separated)."""
    for t in _with_conn(data_dir, county.county):
        units = ", ".join(f"{u['id']}:{u['name_zh']}{' (retired)' if u['retired_at'] else ''}" for u in t["units"])
        click.echo(f"{t['code']}\t{t['name_zh']}\t{t['name_en']}\tstations: {','.join(t['stations']) or '-'}\t"
                   f"grids: {len(t['grids'])}\tunits: {units or '-'}\tboundary: {'yes' if t['boundary'] else 'no'}")


@township.command("add")
@data_option
@click.argument("code")
@click.option("--name-zh", required=True, help="Chinese name, e.g. 义桥镇.")
@click.option("--name-en", required=True, help="English name, e.g. Yiqiao Town.")
@boundary_option
@click.option("--station", "stations", multiple=True,
              help="A department stationed there (repeat; default: all seven).")
def township_add(data_dir: Path | None, code: str, name_zh: str, name_en: str, boundary: Path | None,
                 stations: tuple[str, ...]) -> None:
    """Add a township (its event log starts empty; call numbers start at 1)."""
    shape = _geometry(boundary)

    async def go(conn: Conn) -> int:
        return await county.add_township(conn, actor=adminlog.cli_actor(), now=_now(), code=code, name_zh=name_zh,
                                         name_en=name_en, boundary=shape, stations=list(stations) or None)

    tid = _with_conn(data_dir, go)
    click.echo(f"township {code} created (id {tid})")


@township.command("set")
@data_option
@click.argument("code")
@click.option("--name-zh", default=None)
@click.option("--name-en", default=None)
@boundary_option
@click.option("--no-boundary", is_flag=True, help="Clear the boundary.")
def township_set(data_dir: Path | None, code: str, name_zh: str | None, name_en: str | None, boundary: Path | None,
                 no_boundary: bool) -> None:
    """Rename a township or set its boundary."""
    shape = _geometry(boundary)
    _with_conn(data_dir, lambda conn: county.update_township(
        conn, actor=adminlog.cli_actor(), now=_now(), code=code, name_zh=name_zh, name_en=name_en, boundary=shape,
        set_boundary=boundary is not None or no_boundary))
    click.echo(f"township {code} updated")


@click.group()
def grid() -> None:
    """Grids (网格) of a township: add, rename, set a boundary."""


@grid.command("add")
@data_option
@click.argument("township_code")
@click.argument("name")
@boundary_option
def grid_add(data_dir: Path | None, township_code: str, name: str, boundary: Path | None) -> None:
    """Add grid NAME to TOWNSHIP_CODE."""
    shape = _geometry(boundary)
    gid = _with_conn(data_dir, lambda conn: county.add_grid(conn, actor=adminlog.cli_actor(), now=_now(),
                                                            township_code=township_code, name=name, boundary=shape))
    click.echo(f"grid {name} of {township_code} created (id {gid})")


@grid.command("set")
@data_option
@click.argument("grid_id", type=int)
@click.option("--name", default=None)
@boundary_option
@click.option("--no-boundary", is_flag=True, help="Clear the boundary.")
def grid_set(data_dir: Path | None, grid_id: int, name: str | None, boundary: Path | None, no_boundary: bool) -> None:
    """Rename grid GRID_ID or set its boundary."""
    shape = _geometry(boundary)
    _with_conn(data_dir, lambda conn: county.update_grid(conn, actor=adminlog.cli_actor(), now=_now(),
                                                         grid_id=grid_id, name=name, boundary=shape,
                                                         set_boundary=boundary is not None or no_boundary))
    click.echo(f"grid {grid_id} updated")


@click.group()
def station() -> None:
    """Stations (派驻) of the seven departments in a township."""


@station.command("add")
@data_option
@click.argument("township_code")
@click.argument("department")
def station_add(data_dir: Path | None, township_code: str, department: str) -> None:
    """Station DEPARTMENT in TOWNSHIP_CODE (it becomes a dispatch target there)."""
    _with_conn(data_dir, lambda conn: county.add_station(conn, actor=adminlog.cli_actor(), now=_now(),
                                                         township_code=township_code, department=department))
    click.echo(f"{department} stationed in {township_code}")


@station.command("remove")
@data_option
@click.argument("township_code")
@click.argument("department")
def station_remove(data_dir: Path | None, township_code: str, department: str) -> None:
    """Remove DEPARTMENT's station (refused while it has open assignments there)."""
    _with_conn(data_dir, lambda conn: county.remove_station(conn, actor=adminlog.cli_actor(), now=_now(),
                                                            township_code=township_code, department=department))
    click.echo(f"{department} no longer stationed in {township_code}")


@click.group()
def unit() -> None:
    """Township units (镇属力量, the "N"): add, rename, retire."""


@unit.command("add")
@data_option
@click.argument("township_code")
@click.option("--name-zh", required=True, help="e.g. 应急分队")
@click.option("--name-en", required=True, help="e.g. Emergency squad")
def unit_add(data_dir: Path | None, township_code: str, name_zh: str, name_en: str) -> None:
    """Add a unit to TOWNSHIP_CODE (a dispatch target there, unit:<id>)."""
    uid = _with_conn(data_dir, lambda conn: county.add_unit(conn, actor=adminlog.cli_actor(), now=_now(),
                                                            township_code=township_code, name_zh=name_zh,
                                                            name_en=name_en))
    click.echo(f"unit {name_zh} of {township_code} created (id {uid}, target unit:{uid})")


@unit.command("set")
@data_option
@click.argument("unit_id", type=int)
@click.option("--name-zh", default=None)
@click.option("--name-en", default=None)
def unit_set(data_dir: Path | None, unit_id: int, name_zh: str | None, name_en: str | None) -> None:
    """Rename unit UNIT_ID."""
    _with_conn(data_dir, lambda conn: county.update_unit(conn, actor=adminlog.cli_actor(), now=_now(),
                                                         unit_id=unit_id, name_zh=name_zh, name_en=name_en))
    click.echo(f"unit {unit_id} updated")


@unit.command("retire")
@data_option
@click.argument("unit_id", type=int)
def unit_retire(data_dir: Path | None, unit_id: int) -> None:
    """Retire unit UNIT_ID: no longer a target (refused while it has open assignments)."""
    _with_conn(data_dir, lambda conn: county.retire_unit(conn, actor=adminlog.cli_actor(), now=_now(),
                                                         unit_id=unit_id))
    click.echo(f"unit {unit_id} retired")


GROUPS = (township, grid, station, unit)
