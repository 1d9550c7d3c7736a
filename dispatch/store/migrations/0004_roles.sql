-- Two read-only roles of the evaluation (考核): the township leader (镇街领导, one township) and the
-- department head (部门负责人, one county department across every township).
alter table users drop constraint users_role_check;
alter table users add constraint users_role_check
    check (role in ('operator', 'liaison', 'supervisor', 'admin', 'leader', 'department_head'));
-- the constraints created unnamed in 0001, replaced by named ones that say what they require
alter table users drop constraint users_check;
alter table users drop constraint users_check1;
alter table users drop constraint users_check2;
alter table users add constraint users_township_required
    check (role not in ('operator', 'liaison', 'leader') or township_id is not null);
alter table users add constraint users_liaison_target
    check (role <> 'liaison' or (department is null) <> (unit_id is null));
alter table users add constraint users_department_head_target
    check (role <> 'department_head' or (department is not null and unit_id is null and township_id is null));
alter table users add constraint users_no_target
    check (role in ('liaison', 'department_head') or (department is null and unit_id is null));
