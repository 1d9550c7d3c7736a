"""A node's Prometheus metrics (docs/OPERATIONS.md): one registry per hub app, never the library's global one,
so several hubs in one process (the tests) keep their figures apart.

Counters and the acknowledgement histogram are observed when this node commits the event (``Store.on_commit``),
so each event is counted once in the whole cluster and a sum over nodes is right. Gauges that read the database
are filled by the scrape itself (``render``), from a snapshot taken just before."""

from __future__ import annotations

import gc
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from dispatch.core.domain import DEPARTMENTS
from dispatch.core.records import Call
from dispatch.core.transitions import CallState
from dispatch.store.eventlog import EventRecord
from dispatch.store.metrics import Counts

# Acknowledgement deadlines are minutes (urgent 2, normal 10, low 30): buckets from 15 s to a day.
ACK_BUCKETS = (15.0, 30.0, 60.0, 120.0, 180.0, 300.0, 600.0, 900.0, 1200.0, 1800.0, 3600.0, 7200.0, 14400.0,
               43200.0, 86400.0)
# Commit to frame on the wire: milliseconds normally, seconds when a socket or the database lags.
FANOUT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
OUTBOX_STATUSES = ("queued", "retrying")
POOL_STATES = ("in_use", "idle")


def department_label(target: str) -> str:
    """A county department's code; the township's own units (``unit:<id>``) together as ``unit``."""
    return target if target in DEPARTMENTS else "unit"


@dataclass(frozen=True)
class Snapshot:
    """What one scrape read just before rendering."""

    counts: Counts
    channels: Sequence[str]  # the configured notification channels (listed even with nothing queued)
    sockets: Mapping[str, int]  # role → open WebSocket connections on this node
    roles: Sequence[str]  # every role (listed even with no socket)
    pool_size: int
    pool_idle: int
    pool_max: int


class ScrapeCollector(Collector):
    """The gauges read at scrape time, from ``snapshot``."""

    def __init__(self) -> None:
        self.snapshot: Snapshot | None = None

    def describe(self) -> Iterable[Metric]:
        return list(self._families())

    def collect(self) -> Iterable[Metric]:
        return list(self._families(self.snapshot))

    def _families(self, snap: Snapshot | None = None) -> Iterable[Metric]:
        calls = GaugeMetricFamily("xianghu_calls", "Calls by township (code) and state, from the database.",
                                  labels=["township", "state"])
        clients = GaugeMetricFamily("xianghu_websocket_clients", "Open WebSocket connections on this node by role.",
                                    labels=["role"])
        outbox = GaugeMetricFamily("xianghu_notification_outbox",
                                   "Notification messages still to send, by channel and status (queued: not "
                                   "tried yet; retrying: failed at least once).", labels=["channel", "status"])
        pool = GaugeMetricFamily("xianghu_db_pool_connections",
                                 "This node's database pool connections by state (in_use, idle).", labels=["state"])
        pool_max = GaugeMetricFamily("xianghu_db_pool_max_connections", "This node's database pool size limit.")
        if snap is not None:
            counts = snap.counts
            for township in counts.townships:
                for state in CallState:
                    calls.add_metric([township, state.value], counts.calls.get((township, state.value), 0))
            for channel in sorted({*snap.channels, *(c for c, _ in counts.outbox)}):
                for status in OUTBOX_STATUSES:
                    outbox.add_metric([channel, status], counts.outbox.get((channel, status), 0))
            for role in sorted({*snap.roles, *snap.sockets}):
                clients.add_metric([role], snap.sockets.get(role, 0))
            pool.add_metric(["in_use"], snap.pool_size - snap.pool_idle)
            pool.add_metric(["idle"], snap.pool_idle)
            pool_max.add_metric([], snap.pool_max)
        yield from (calls, clients, outbox, pool, pool_max)


class CollectorSettings(Collector):
    """How this process runs CPython's garbage collector (``node.collector``): its thresholds and how many
    objects were frozen out of its passes at start-up (``xianghu serve``)."""

    def describe(self) -> Iterable[Metric]:
        return list(self.collect())

    def collect(self) -> Iterable[Metric]:
        thresholds = GaugeMetricFamily("xianghu_gc_threshold", "The garbage collector's threshold per generation "
                                       "(server.gc_thresholds under xianghu serve).", labels=["generation"])
        for generation, threshold in enumerate(gc.get_threshold()):
            thresholds.add_metric([str(generation)], threshold)
        frozen = GaugeMetricFamily("xianghu_gc_frozen_objects", "Objects taken out of the garbage collector's "
                                   "passes after start-up (xianghu serve; 0 elsewhere).")
        frozen.add_metric([], gc.get_freeze_count())
        return [thresholds, frozen]


class LoopHistogram(Collector):
    """A label-less histogram observed from the event loop only: plain counters, no lock, so observing it per
    delivered frame costs a bisect and two additions (``prometheus_client.Histogram`` takes a lock per
    counter). Exposed like one (``_bucket``, ``_count``, ``_sum``)."""

    def __init__(self, name: str, documentation: str, buckets: Sequence[float]) -> None:
        self.name, self.documentation = name, documentation
        self.bounds = tuple(buckets)
        self.counts = [0] * (len(self.bounds) + 1)  # the last: above every bound (+Inf only)
        self.sum = 0.0
        self.created = time.time()  # exposed as ``_created``, as prometheus_client's Histogram does

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def describe(self) -> Iterable[Metric]:
        return [HistogramMetricFamily(self.name, self.documentation)]

    def collect(self) -> Iterable[Metric]:
        buckets: list[tuple[str, float]] = []
        total = 0
        for bound, count in zip((*map(floatToGoString, self.bounds), "+Inf"), self.counts, strict=True):
            total += count
            buckets.append((bound, total))
        family = HistogramMetricFamily(self.name, self.documentation, buckets=buckets, sum_value=self.sum)
        family.add_sample(f"{self.name}_created", {}, self.created)
        return [family]


@dataclass(eq=False)
class NodeMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        r.register(CollectorSettings())
        self.acknowledge = Histogram(
            "xianghu_acknowledge_seconds",
            "Time to acknowledge (响应): acknowledged (the liaison's acted time) minus dispatched, per department; "
            "observed by the node that commits the acknowledgement.",
            ["department"], buckets=ACK_BUCKETS, registry=r)
        self.escalations = Counter(
            "xianghu_escalations", "Escalations (assignment.escalated) committed by this node, by deadline kind "
            "and ladder level.", ["deadline_kind", "level"], registry=r)
        self.events = Counter(
            "xianghu_events_committed", "Events of commands committed by this node (people's and the SLA "
            "engine's), by type.", ["type"], registry=r)
        self.fanout_lag = LoopHistogram(
            "xianghu_fanout_lag_seconds", "From this node hearing of a committed event to its frame written to "
            "a live WebSocket, per frame.", FANOUT_BUCKETS)
        r.register(self.fanout_lag)
        self.scrape = ScrapeCollector()
        r.register(self.scrape)
        self._events_by_type: dict[str, Counter] = {}  # ``events``' children by type

    def committed(self, records: Sequence[EventRecord], steps: Sequence[Call]) -> None:
        """Count a command's events once it committed; ``steps[i]`` is the call after ``records[i]``."""
        events = self._events_by_type
        for rec, call in zip(records, steps, strict=True):
            child = events.get(rec.type)
            if child is None:  # ``labels`` costs microseconds a call (checks, a lock): once per type
                child = events[rec.type] = self.events.labels(rec.type)
            child.inc()
            if rec.type == "assignment.acknowledged" and rec.assignment_id is not None:
                a = call.assignments.get(rec.assignment_id)
                if a is not None and a.acknowledged_at is not None:
                    waited = (a.acknowledged_at - a.dispatched_at).total_seconds()
                    self.acknowledge.labels(department_label(a.target)).observe(max(0.0, waited))
            elif rec.type == "assignment.escalated":
                self.escalations.labels(str(rec.body.get("deadline_kind")), str(rec.body.get("level"))).inc()

    def render(self, snapshot: Snapshot, encoder: Callable[[Collector], bytes] = generate_latest) -> bytes:
        """The exposition (Prometheus text, or what ``encoder`` writes), with ``snapshot`` for the scrape-time
        gauges (no await in between: one scrape never renders another's snapshot)."""
        self.scrape.snapshot = snapshot
        return encoder(self.registry)
