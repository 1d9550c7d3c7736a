"""Xianghu 乡呼 hub. One sub-package per concern; imports point down only:

    cli → web → (realtime | timers) → node → store → core      (and everything may import ``protocols``)

``core`` is sans-I/O; ``store`` is PostgreSQL; ``node`` is what a running node holds; ``realtime`` and
``timers`` are independent adapters; ``web`` assembles them; ``cli`` starts processes. The contracts are
checked by import-linter (``[tool.importlinter]`` in pyproject.toml, run by ``scripts/test``).
"""
