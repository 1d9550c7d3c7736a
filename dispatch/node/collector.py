"""CPython's cyclic garbage collector, as ``xianghu serve`` runs it (docs/PERFORMANCE.md, "Garbage collection").

A hub holds tens of thousands of sockets, each with its own Python objects, and a full pass of the collector walks
all of them: with 20,000 sockets one pass takes more than a second, during which no frame is written. Two
settings make those passes rare and shorter:

- the thresholds (``server.gc_thresholds``): young collections every 50,000 allocations instead of 700, so the
  objects of a request or an event die young instead of being promoted into the generations the full pass walks;
- a freeze after start-up: the modules, the configuration and the reference data loaded before the first client
  are moved out of the collector's generations (``gc.freeze``), so no pass walks them again. They live as long as
  the process; objects in them are still freed by reference counting, only cycles among them are never collected.

Only ``serve`` applies these (the process is the hub's own); tests and tools that embed a hub keep Python's defaults.
"""

from __future__ import annotations

import gc


def set_thresholds(thresholds: tuple[int, int, int]) -> tuple[int, int, int]:
    """Use ``thresholds`` from now on; return the ones they replace."""
    before = gc.get_threshold()
    gc.set_threshold(*thresholds)
    return before


def freeze_startup() -> int:
    """Collect what start-up left behind, then take every surviving object out of the collector's passes; return
    how many objects are frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
