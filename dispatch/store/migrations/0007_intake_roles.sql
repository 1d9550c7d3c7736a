-- Two roles that feed a township's intake (问) and do nothing else: the grid worker (网格员, a person on a
-- phone, attached to a township and optionally one of its grids) and the integration (an outside system:
-- an Open311 client or the 12345 hotline, whose events name it as their actor).
alter table users drop constraint users_role_check;
alter table users add constraint users_role_check
    check (role in ('operator', 'liaison', 'supervisor', 'admin', 'leader', 'department_head',
                    'grid_worker', 'integration'));
alter table users drop constraint users_township_required;
alter table users add constraint users_township_required
    check (role not in ('operator', 'liaison', 'leader', 'grid_worker') or township_id is not null);
alter table users add column grid_id integer references grids (id);
alter table users add constraint users_grid_worker_grid
    check (grid_id is null or role = 'grid_worker');
