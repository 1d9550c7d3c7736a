-- Gap-free call numbers per township per year (Asia/Shanghai), assigned under the township lock in the
-- transaction that creates the call. Existing calls keep the numbers they were given (the log is not
-- rewritten); new numbers have another form (CODE-YYYY-NNNNNN), so the two never collide.
create table call_numbers (
    township_id integer not null references townships (id),
    year        integer not null check (year between 1970 and 9999),
    last        integer not null check (last > 0),
    primary key (township_id, year)
);

-- Repeat-caller lookup: the reporter's phone as digits only, kept by the database from the projection.
alter table calls
    add column reporter_digits text
        generated always as (nullif(regexp_replace(doc->>'reporter_phone', '[^0-9]', '', 'g'), '')) stored;
create index calls_reporter_digits on calls (township_id, reporter_digits, created_at)
    where reporter_digits is not null;
