"""A realistic, time-ordered history for the demo county (``xianghu seed-demo --history N``).

The county's people act on their habits (``county``) through the product's own sans-I/O core, each command
at its simulated time (``clockwork``: one heap of actions for every township, the SLA engine's escalations);
the result is bulk-loaded with COPY (``dispatch.store.bulk``). ``scenery`` holds the county's data.
"""

MAX_MONTHS = 24  # the most ``--history`` loads
