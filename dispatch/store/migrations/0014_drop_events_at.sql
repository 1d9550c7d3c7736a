-- events_at (0002) served no query: the export's period bounds walk the primary key (township_id, seq) from
-- either end (store/export.py; EXPLAIN on a seeded year of 1,045,850 events chose events_pkey with and without
-- it), "my reports" reads events_created_by (0008), the rest go by (township_id, seq) or (call_id, seq). Every
-- event inserted still paid for it: one more B-tree entry (and its WAL) per event, three a create_call.
drop index if exists events_at;
