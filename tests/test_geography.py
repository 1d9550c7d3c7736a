"""Which township and grid a place belongs to (sans-I/O), the demo county's map, the rate limiter, and the
Open311 form's shape."""

from __future__ import annotations

import pytest

from dispatch.cli.demo import GRIDS_PER_TOWNSHIP, TOWNSHIPS, grid_box, township_box
from dispatch.core.geography import county_map, parse_boundary, rectangle
from dispatch.core.open311 import form_fields
from dispatch.core.ratelimit import RateLimiter


def demo_map():  # type: ignore[no-untyped-def]
    townships = [(i + 1, rectangle(*township_box(i))) for i in range(len(TOWNSHIPS))]
    grids = [(i * 10 + g, i + 1, rectangle(*grid_box(i, g)))
             for i in range(len(TOWNSHIPS)) for g in range(1, GRIDS_PER_TOWNSHIP + 1)]
    return county_map(townships, grids)


def test_every_demo_township_and_grid_contains_its_own_centre() -> None:
    county = demo_map()
    for i in range(len(TOWNSHIPS)):
        for g in range(1, GRIDS_PER_TOWNSHIP + 1):
            west, south, east, north = grid_box(i, g)
            match = county.locate((west + east) / 2, (south + north) / 2)
            assert match is not None and (match.township_id, match.grid_id) == (i + 1, i * 10 + g)


def test_a_shared_edge_belongs_to_exactly_one_township_and_outside_is_none() -> None:
    county = demo_map()
    # 116.4 is the edge between the first two townships of the south row: the eastern one (left edge) has it.
    assert county.locate(116.4, 35.65).township_id == 2  # type: ignore[union-attr]
    assert county.locate(116.8, 35.65) is None  # the county's east edge is outside
    assert county.locate(120.0, 30.0) is None
    assert county.grid_in(1, 116.55, 35.65) is None  # a point of township 3 is in no grid of township 1


def test_holes_and_multipolygons() -> None:
    ring = [[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]]
    hole = [[4, 4], [6, 4], [6, 6], [4, 6], [4, 4]]
    triangle = [[20, 0], [30, 0], [25, 5], [20, 0]]
    county = county_map([(1, {"type": "Polygon", "coordinates": [ring, hole]}),
                         (2, {"type": "MultiPolygon", "coordinates": [[hole], [triangle]]})], [])
    assert county.locate(1, 1).township_id == 1  # type: ignore[union-attr]
    assert county.locate(5, 5).township_id == 2  # type: ignore[union-attr]  # the hole is township 2's island
    assert county.locate(25, 2).township_id == 2  # type: ignore[union-attr]
    assert county.locate(15, 5) is None


@pytest.mark.parametrize(("doc", "why"), [
    ({"type": "Point", "coordinates": [1, 2]}, "type must be Polygon"),
    ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 0]]]}, "at least 4"),
    ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]}, "end where it starts"),
    ({"type": "Polygon", "coordinates": [[[0, 0], [181, 0], [1, 1], [0, 0]]]}, "not a lon/lat"),
])
def test_malformed_boundaries_are_named(doc: dict[str, object], why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_boundary(doc)


def test_the_rate_limiter_allows_a_minute_at_once_then_refills() -> None:
    limiter = RateLimiter()
    assert [limiter.take("a", 3, 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a", 3, 0.0) == pytest.approx(20.0)
    assert limiter.take("b", 3, 0.0) == 0.0  # buckets are per key
    assert limiter.take("a", 3, 20.0) == 0.0
    assert limiter.take("a", 3, 1000.0) == 0.0 and limiter.take("a", 3, 1000.0) == 0.0  # never beyond 3 saved
    assert limiter.take("a", 3, 1000.0) == 0.0 and limiter.take("a", 3, 1000.0) > 0


def test_open311_form_attributes() -> None:
    fields = form_fields([("service_code", "noise"), ("attribute[priority]", "low"), ("lat", "1")])
    assert fields == {"service_code": "noise", "lat": "1", "attribute": {"priority": "low"}}
