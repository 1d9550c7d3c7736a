-- Placeholder for the reference-data migration of the admin-ref branch (the loader refuses gaps);
-- dropped when both branches are merged.
select 1;
