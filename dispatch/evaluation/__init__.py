"""The evaluation (考核): what a department's part in calls adds up to, per period.

Owns the per-assignment evaluation facts (``facts``: a pure fold over a call's events, projected by the
store in the same transaction as the events), the periods in Asia/Shanghai (``period``), the scorecards
and their composite score (``scorecard``), the trends (``trends``) and the spreadsheets (``sheets``).
Every rule is written down in docs/EVALUATION.md, so anyone can recompute a figure from the exported log.

Sans-I/O like the core: it imports the core and nothing that touches a socket or a database; the store
reads and writes its rows, the web layer serves them.
"""
