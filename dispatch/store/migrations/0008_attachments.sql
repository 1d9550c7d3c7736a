-- Photos (JPEG, PNG, WebP) and PDFs as evidence: uploaded first, then bound to a call by the command that
-- names them (create_call at intake, arrive 报到, report_result 办结), in that command's transaction.
-- The bytes live here (`data`) or in the configured folder, named by their SHA-256 ([attachments] store).
create table attachments (
    id            uuid        primary key,
    township_id   integer     not null references townships (id),
    uploaded_by   integer     not null references users (id),
    uploaded_at   timestamptz not null,
    sha256        bytea       not null check (length(sha256) = 32),
    content_type  text        not null check (content_type in ('image/jpeg', 'image/png', 'image/webp',
                                                                'application/pdf')),
    size          integer     not null check (size > 0),
    width         integer,
    height        integer,
    data          bytea,      -- null when the bytes are in the folder
    thumbnail     bytea,      -- a small JPEG (images only), always here
    -- Set once, when a command binds it: the call, the event that recorded its digest, and that step.
    call_id       uuid        references calls (id),
    event_seq     bigint,
    step          text        check (step in ('intake', 'arrive', 'report_result')),
    assignment_id uuid,
    position      integer,    -- its place among the attachments the command named (1-based)
    check ((call_id is null) = (event_seq is null) and (call_id is null) = (step is null))
);
create index attachments_call on attachments (call_id, event_seq) where call_id is not null;
-- Unbound uploads are removed after a day (on upload); this finds them.
create index attachments_unbound on attachments (uploaded_at) where call_id is null;
create index attachments_sha256 on attachments (sha256);

-- "My reports" (GET /api/v1/reports/mine): the calls a user created, newest first.
create index events_created_by on events (actor_id, at desc) where type = 'call.created';
