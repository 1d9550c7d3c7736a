-- Settings an admin changes at run time (docs/CONFIGURATION.md "Settings in the database"): each change of
-- an administrable section (categories, sla, evaluation) is a new version holding the whole section. The
-- effective configuration is the file with the latest version of each section over it; every version stays,
-- so an SLA clock keeps the escalation ladder of the version it was started under.
create table settings (
    section     text        not null check (section in ('categories', 'sla', 'evaluation')),
    version     integer     not null check (version > 0),
    value       json        not null,    -- json, not jsonb: the order of the categories is kept
    changed_at  timestamptz not null,
    actor_id    integer,                 -- null: the CLI (actor_name is "cli:<os account>")
    actor_name  text        not null,
    primary key (section, version)
);

-- A category in use by calls is retired, not removed: kept for the calls that name it, refused for new ones.
alter table categories add column retired boolean not null default false;
