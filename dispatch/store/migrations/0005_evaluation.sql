-- Evaluation facts (考核): one row per assignment, folded from its call's events by
-- dispatch.evaluation.facts and written in the same transaction as those events. Rebuilt from the log
-- when the fold's rules change (meta 'facts_version'). Times, never verdicts: whether a deadline was met
-- is decided when a scorecard is asked for (docs/EVALUATION.md).
create table assignment_facts (
    assignment_id      uuid        primary key,
    call_id            uuid        not null,
    township_id        integer     not null references townships (id),
    number             text        not null,
    target             text        not null,
    category           text        not null,
    priority           text        not null,
    source             text        not null,
    grid_id            bigint,
    lead               boolean     not null,
    state              text        not null,
    dispatched_at      timestamptz not null,
    transferred_from   uuid,
    ack_due            timestamptz not null,
    arrive_due         timestamptz not null,
    resolve_due        timestamptz not null,
    responded_at       timestamptz,
    responded_by       text,
    arrived_at         timestamptz,
    reported_at        timestamptz,
    first_reported_at  timestamptz,
    requested_at       timestamptz,
    paused_ack_ms      bigint      not null default 0,
    paused_arrive_ms   bigint      not null default 0,
    paused_resolve_ms  bigint      not null default 0,
    result_cycles      integer     not null default 1,
    late_cycles        integer     not null default 0,
    ended_at           timestamptz,
    ended_how          text,
    requests_approved  integer     not null default 0,
    requests_rejected  integer     not null default 0,
    send_backs         integer     not null default 0,
    reopened           integer     not null default 0,
    esc_ack            integer[]   not null default '{}',
    esc_arrive         integer[]   not null default '{}',
    esc_resolve        integer[]   not null default '{}',
    visited_at         timestamptz,
    visit_resolved     boolean,
    visit_satisfaction integer,
    adjusted           integer     not null default 0,
    last_seq           bigint      not null default 0
);
create index assignment_facts_period on assignment_facts (dispatched_at);
create index assignment_facts_township on assignment_facts (township_id, dispatched_at);
create index assignment_facts_call on assignment_facts (call_id);
-- Trends read calls by creation month, category and place.
create index calls_township_created on calls (township_id, created_at);
