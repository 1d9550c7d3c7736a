-- Outside systems that feed a township's intake (问): Open311 GeoReport v2 clients and the 12345 hotline
-- (docs/INTAKE.md), and the geography that says which township a reported place belongs to.

-- GeoJSON geometry (Polygon or MultiPolygon, rings of [lon, lat] in WGS 84); null: no boundary known.
alter table townships add column boundary jsonb;
alter table grids add column boundary jsonb;

-- One row per outside system. Its events name its users row (role 'integration') as their actor.
create table integrations (
    id            uuid        primary key,
    kind          text        not null check (kind in ('open311', 'hotline')),
    name          text        not null unique check (name ~ '^[a-z0-9_-]{2,40}$'),
    user_id       integer     not null unique references users (id),
    township_id   integer     references townships (id),    -- bound to one township; null: by location
    source        text        not null,                      -- the calls' source (domain.Source)
    key_hash      bytea       unique,                        -- open311: sha256 of the api_key
    secret        text,                                      -- hotline: the HMAC secret (kept to verify)
    callback_url  text,
    rate_per_min  integer     not null check (rate_per_min between 1 and 100000),
    enabled       boolean     not null default true,
    created_at    timestamptz not null,
    constraint integrations_credential check (
        (kind = 'open311' and key_hash is not null and secret is null)
        or (kind = 'hotline' and secret is not null and key_hash is null))
);

-- The calls each integration created, with the outside system's own id (the hotline's ticket id) and
-- what the call itself has no field for (media_url, email, device_id, account_id, reported_at).
create table integration_calls (
    call_id        uuid        primary key references calls (id),
    integration_id uuid        not null references integrations (id),
    external_id    text,
    details        jsonb       not null default '{}',
    created_at     timestamptz not null,
    unique (integration_id, external_id)
);
create index integration_calls_recent on integration_calls (integration_id, created_at);

-- Hotline request signatures seen in the last minutes: a replay is refused on every node.
create table hotline_signatures (
    signature  bytea       primary key,
    seen_at    timestamptz not null
);
create index hotline_signatures_seen on hotline_signatures (seen_at);
