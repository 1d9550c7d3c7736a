-- County administration (issue #17): a township unit ("N") is retired, never deleted (its assignments, facts and
-- events keep naming it); a retired unit is no longer a target. Township codes follow the same rule as the CLI's.
alter table units add column retired_at timestamptz;
alter table townships add constraint townships_code_check check (code ~ '^[a-z][a-z0-9_-]{1,31}$');
