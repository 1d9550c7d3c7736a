-- The event log (the record) and the projections written in the same transaction.

-- One row per township: the lock that orders its events, the last sequence and the last hash.
create table township_heads (
    township_id integer primary key references townships (id),
    seq         bigint  not null default 0,
    hash        bytea   not null default ''::bytea
);

create table events (
    township_id      integer     not null references townships (id),
    seq              bigint      not null check (seq > 0),
    call_id          uuid,
    assignment_id    uuid,
    type             text        not null,
    actor_id         integer,
    actor_role       text        not null,
    actor_name       text        not null,
    at               timestamptz not null,
    body             jsonb       not null,
    audience         text[]      not null,
    call_state       text,
    assignment_state text,
    command_id       uuid,
    prev_hash        bytea       not null,
    hash             bytea       not null,
    primary key (township_id, seq)
);
create index events_call on events (call_id, seq);
create index events_at on events (at);

create function events_append_only() returns trigger language plpgsql as $$
begin
    raise exception 'events are append-only: % refused', tg_op using errcode = 'P0001';
end $$;
create trigger events_no_update before update or delete on events
    for each row execute function events_append_only();
create trigger events_no_truncate before truncate on events
    for each statement execute function events_append_only();

create table calls (
    id          uuid        primary key,
    township_id integer     not null references townships (id),
    number      text        not null unique,
    state       text        not null,
    category    text        not null,
    priority    text        not null,
    source      text        not null,
    title       text        not null,
    address     text        not null,
    created_at  timestamptz not null,
    updated_at  timestamptz not null,
    closed_at   timestamptz,
    last_seq    bigint      not null,
    doc         jsonb       not null
);
create index calls_township_state on calls (township_id, state, created_at desc);
create index calls_created on calls (created_at desc);

create table assignments (
    id          uuid        primary key,
    call_id     uuid        not null references calls (id),
    township_id integer     not null references townships (id),
    target      text        not null,
    state       text        not null,
    ack_due     timestamptz,
    arrive_due  timestamptz,
    resolve_due timestamptz,
    -- The next escalation this assignment is waiting for (the SLA engine's claim key).
    next_due    timestamptz,
    next_kind   text,
    next_level  integer,
    updated_at  timestamptz not null,
    doc         jsonb       not null
);
create index assignments_call on assignments (call_id);
create index assignments_target on assignments (township_id, target, state);
create index assignments_next_due on assignments (next_due) where next_due is not null;

-- Idempotency: one row per client command id with the result it produced.
create table commands (
    command_id   uuid        primary key,
    user_id      integer,
    kind         text        not null,
    payload_hash bytea       not null,
    township_id  integer,
    result       jsonb       not null,
    created_at   timestamptz not null
);
