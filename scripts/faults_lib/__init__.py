"""Xianghu fault harness (``./scripts/faults``): crash, failover, PostgreSQL outage, fuzzing, a reader that never
reads, a soak and tampering, each measured against zero-loss targets. See docs/FAULTS.md.

It reuses the benchmark harness (``scripts/bench_lib``): its generator processes (``procs.Worker``), its REST
load generator (``gen.creator``), its embedded-PostgreSQL set-up and token minting (``Bench``) and its hub
process wrapper (``Hub``). What is new here: hub processes started with ``python -m dispatch.cli`` on a chosen
port and configuration (so a hub can be restarted where it was), clients that keep per-township cursors and
resume as protocols/PROTOCOL.md says while recording every arrival (``clients``), a frame fuzzer and a reader
that never reads.
"""
