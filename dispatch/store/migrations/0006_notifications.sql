-- The notification outbox (docs/NOTIFICATIONS.md): who must be told is written in the same transaction as
-- the event that causes it; a sender on any node claims and delivers each message, retrying with backoff.
alter table users add column phone text check (phone is null or phone ~ '^[0-9+ -]{5,20}$');
-- The channels this person wants besides the consoles (the deployment's [notify].channels still apply).
alter table users add column channels text[] not null default '{webpush,sms}';

create table notifications (
    id              bigint      generated always as identity primary key,
    township_id     integer     not null references townships (id),
    call_id         uuid        not null,
    assignment_id   uuid,
    cause_seq       bigint      not null,
    reason          text        not null,
    deadline_kind   text,
    level           integer,
    audience        text        not null,
    user_id         integer     references users (id),
    recipient       text        not null,  -- a person's display name, or the robot's name
    channel         text        not null check (channel in ('webpush', 'sms', 'wecom', 'dingtalk', 'webhook')),
    destination     text        not null,  -- "user:<id>" or "robot:<name>": one FIFO per (channel, destination)
    repeat          integer     not null default 0,
    payload         jsonb       not null,
    state           text        not null default 'pending'
                    check (state in ('pending', 'sent', 'failed', 'obsolete')),
    not_before      timestamptz not null,
    next_attempt_at timestamptz not null,
    attempts        integer     not null default 0,
    last_error      text,
    claimed_until   timestamptz,
    claimed_by      text,
    created_at      timestamptz not null,
    done_at         timestamptz,
    unique (township_id, cause_seq, channel, destination, repeat)
);
create index notifications_pending on notifications (channel, destination, not_before, id) where state = 'pending';
create index notifications_call on notifications (call_id);

create table notification_attempts (
    notification_id bigint      not null references notifications (id),
    attempt         integer     not null,
    at              timestamptz not null,
    ok              boolean     not null,
    status          integer,
    error           text,
    primary key (notification_id, attempt)
);

-- Web Push subscriptions of the liaison app (one per installed browser).
create table push_subscriptions (
    id          bigint      generated always as identity primary key,
    user_id     integer     not null references users (id),
    endpoint    text        not null unique,
    p256dh      text        not null,
    auth        text        not null,
    created_at  timestamptz not null,
    last_ok_at  timestamptz,
    gone_at     timestamptz  -- the push service answered 404/410: never used again
);
create index push_subscriptions_user on push_subscriptions (user_id) where gone_at is null;
