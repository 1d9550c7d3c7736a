-- Personal data out of the chain (DESIGN.md idea 10): a reporter's name and phone live here, keyed by call;
-- the chained call.created event carries only reporter_digest = SHA-256(salt || canonical {name, phone})
-- (docs/EXPORT.md). Erasure clears name, phone and salt and sets erased_at; the digest stays, the chain too.
create table reporters (
    call_id     uuid        primary key references calls (id),
    township_id integer     not null references townships (id),
    name        text,
    phone       text,
    salt        bytea,
    digest      bytea       not null,
    created_at  timestamptz not null,
    erased_at   timestamptz,
    constraint reporters_erased_empty
        check (erased_at is null or (name is null and phone is null and salt is null)),
    constraint reporters_kept_salted check (erased_at is not null or salt is not null)
);
create index reporters_kept on reporters (township_id) where erased_at is null;

-- The admin log (DESIGN.md idea 11): one county-wide chain of administrative changes, hashed like the events
-- (canonical JSON of every column but prev_hash and hash, docs/EXPORT.md), appended under an advisory lock.
create table admin_log (
    seq        bigint      primary key check (seq > 0),
    at         timestamptz not null,
    actor_id   integer,
    actor_name text        not null,
    action     text        not null,
    target     text        not null,
    before     jsonb,
    after      jsonb,
    prev_hash  bytea       not null,
    hash       bytea       not null
);

create function admin_log_append_only() returns trigger language plpgsql as $$
begin
    raise exception 'the admin log is append-only: % refused', tg_op using errcode = 'P0001';
end $$;
create trigger admin_log_no_update before update or delete on admin_log
    for each row execute function admin_log_append_only();
create trigger admin_log_no_truncate before truncate on admin_log
    for each statement execute function admin_log_append_only();
