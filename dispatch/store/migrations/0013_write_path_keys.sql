-- The write path's per-row checks against townships (docs/PERFORMANCE.md "The write path"). Every row of these
-- tables is written under its township's lock, the township_heads row, whose own foreign key keeps the township;
-- townships are never deleted. Checking each event, call, assignment, fact and reporter again against
-- townships cost a lookup and a row lock (FOR KEY SHARE, a WAL record) per row of every command.
-- township_heads keeps its key, and every other foreign key stays (assignments and reporters to their call).
alter table events drop constraint events_township_id_fkey;
alter table calls drop constraint calls_township_id_fkey;
alter table assignments drop constraint assignments_township_id_fkey;
alter table assignment_facts drop constraint assignment_facts_township_id_fkey;
alter table reporters drop constraint reporters_township_id_fkey;
