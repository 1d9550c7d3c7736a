"""The ``xianghu`` command (click): serve, demo, migrate, users, verify-log, export-log, listen; the demo county;
and the Python client library (``client``) the listener, tests and benchmarks use.

Owns: process start-up and shutdown, the embedded PostgreSQL's lifetime in ``demo``.
Promises: every option is validated and every error names what is wrong.
May import every other sub-package; nothing imports it.
"""
