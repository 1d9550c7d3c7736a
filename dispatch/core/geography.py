"""Which township (and grid) a reported place belongs to: point in polygon over GeoJSON-style boundaries.

Boundaries are GeoJSON geometries (``Polygon`` or ``MultiPolygon``; rings of ``[lon, lat]``, the first ring
of a polygon its outline, the others holes). No projection: township-sized areas are small enough that
lon/lat behave as plane coordinates for "is this point inside".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

Point = tuple[float, float]  # (lon, lat)
Ring = tuple[Point, ...]
Polygon = tuple[Ring, ...]  # outline, then holes
MAX_POINTS = 100_000


@dataclass(frozen=True)
class Area:
    """A township's or a grid's boundary; ``township_id`` is the township it is or belongs to."""

    id: int
    township_id: int
    polygons: tuple[Polygon, ...]
    bbox: tuple[float, float, float, float]  # min lon, min lat, max lon, max lat

    def contains(self, lon: float, lat: float) -> bool:
        x0, y0, x1, y1 = self.bbox
        if not (x0 <= lon <= x1 and y0 <= lat <= y1):
            return False
        return any(_in_polygon(poly, lon, lat) for poly in self.polygons)


@dataclass(frozen=True)
class Match:
    township_id: int
    grid_id: int | None


@dataclass(frozen=True)
class CountyMap:
    townships: tuple[Area, ...]
    grids: tuple[Area, ...]

    def locate(self, lon: float, lat: float) -> Match | None:
        """The township containing the point (the one with the lowest id on a shared edge) and the grid of
        that township containing it; a grid alone decides when its township has no boundary."""
        township = next((a for a in self.townships if a.contains(lon, lat)), None)
        if township is None:
            grid = next((g for g in self.grids if g.contains(lon, lat)), None)
            return None if grid is None else Match(grid.township_id, grid.id)
        return Match(township.id, self.grid_in(township.id, lon, lat))

    def grid_in(self, township_id: int, lon: float, lat: float) -> int | None:
        """The grid of ``township_id`` containing the point, if any."""
        return next((g.id for g in self.grids if g.township_id == township_id and g.contains(lon, lat)), None)


def _ring(value: Any, where: str) -> Ring:
    if not isinstance(value, list) or len(value) < 4:
        raise ValueError(f"{where}: a ring needs at least 4 positions (closed)")
    points: list[Point] = []
    for pos in value:
        if (not isinstance(pos, list | tuple) or len(pos) < 2
                or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in pos[:2])):
            raise ValueError(f"{where}: a position is [lon, lat]")
        lon, lat = float(pos[0]), float(pos[1])
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise ValueError(f"{where}: [{lon}, {lat}] is not a lon/lat position")
        points.append((lon, lat))
    if points[0] != points[-1]:
        raise ValueError(f"{where}: a ring must end where it starts")
    return tuple(points)


def parse_boundary(doc: Mapping[str, Any], where: str = "boundary") -> tuple[Polygon, ...]:
    """The polygons of a GeoJSON ``Polygon`` / ``MultiPolygon`` geometry; ``ValueError`` naming the fault."""
    kind = doc.get("type")
    coords = doc.get("coordinates")
    if kind == "Polygon":
        raw = [coords]
    elif kind == "MultiPolygon" and isinstance(coords, list):
        raw = coords
    else:
        raise ValueError(f"{where}: type must be Polygon or MultiPolygon")
    polygons: list[Polygon] = []
    count = 0
    for i, poly in enumerate(raw):
        if not isinstance(poly, list) or not poly:
            raise ValueError(f"{where}: polygon {i} has no rings")
        rings = tuple(_ring(r, f"{where}: polygon {i} ring {j}") for j, r in enumerate(poly))
        count += sum(len(r) for r in rings)
        polygons.append(rings)
    if not polygons or count > MAX_POINTS:
        raise ValueError(f"{where}: between 1 polygon and {MAX_POINTS} positions")
    return tuple(polygons)


def area(id_: int, township_id: int, doc: Mapping[str, Any]) -> Area:
    polygons = parse_boundary(doc)
    xs = [p[0] for poly in polygons for p in poly[0]]
    ys = [p[1] for poly in polygons for p in poly[0]]
    return Area(id_, township_id, polygons, (min(xs), min(ys), max(xs), max(ys)))


def county_map(townships: Iterable[tuple[int, Mapping[str, Any]]],
               grids: Iterable[tuple[int, int, Mapping[str, Any]]]) -> CountyMap:
    """From (township id, boundary) and (grid id, township id, boundary) rows; ordered by id."""
    return CountyMap(tuple(area(t, t, doc) for t, doc in sorted(townships, key=lambda r: r[0])),
                     tuple(area(g, t, doc) for g, t, doc in sorted(grids, key=lambda r: r[0])))


def _in_ring(ring: Ring, x: float, y: float) -> bool:
    """Even-odd ray casting; a point on a left or bottom edge is inside, on a right or top edge outside,
    so neighbours sharing an edge never both claim it."""
    inside = False
    for (x1, y1), (x2, y2) in pairwise(ring):
        if (y1 > y) != (y2 > y):
            cross = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
            if x < cross:
                inside = not inside
    return inside


def _in_polygon(poly: Polygon, x: float, y: float) -> bool:
    return _in_ring(poly[0], x, y) and not any(_in_ring(hole, x, y) for hole in poly[1:])


def rectangle(west: float, south: float, east: float, north: float) -> dict[str, Any]:
    """A GeoJSON Polygon of a lon/lat rectangle (counter-clockwise, as RFC 7946 asks)."""
    r = [[round(west, 6), round(south, 6)], [round(east, 6), round(south, 6)], [round(east, 6), round(north, 6)],
         [round(west, 6), round(north, 6)], [round(west, 6), round(south, 6)]]
    return {"type": "Polygon", "coordinates": [r]}

