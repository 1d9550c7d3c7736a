"""The scorecard read (one SQL statement over the events table alone) and a generator of a large event log.

``SCORECARD_SQL`` is what a monthly department scorecard needs; it is meant to move to ``dispatch/`` with the
scorecard endpoint. Parameters: ``$1``/``$2`` the month's bounds (``timestamptz``, [start, end)), ``$3`` the
time zone months are counted in (``Asia/Shanghai``). Per (month, department): assignments dispatched,
acknowledged / on scene / results on time (first ack/arrive/report event at or before the deadline the
``assignment.dispatched`` body carries), p50/p90 time to acknowledge (s), transfers asked (``declined``) and
escalations. Units (``unit:<id>``) are left out: a scorecard is for the seven departments.

Follow-up events are found through ``events_call (call_id, seq)`` (the only index that reaches them by call);
an ``events (assignment_id)`` index would let the join go by assignment instead.
"""

from __future__ import annotations

SCORECARD_SQL = """
with dispatched as (
    select e.call_id, e.assignment_id, e.body->>'target' as department,
           date_trunc('month', e.at at time zone $3) as month, e.at as dispatched_at,
           (e.body->>'ack_due')::timestamptz as ack_due,
           (e.body->>'arrive_due')::timestamptz as arrive_due,
           (e.body->>'resolve_due')::timestamptz as resolve_due
      from events e
     where e.type = 'assignment.dispatched' and e.at >= $1 and e.at < $2
       and e.body->>'target' not like 'unit:%'
), follow as (
    select f.assignment_id,
           min(f.at) filter (where f.type = 'assignment.acknowledged') as ack_at,
           min(f.at) filter (where f.type = 'assignment.arrived') as arrive_at,
           min(f.at) filter (where f.type = 'assignment.reported') as report_at,
           count(*) filter (where f.type = 'assignment.declined') as transfers,
           count(*) filter (where f.type = 'assignment.escalated') as escalations
      from events f
     where f.call_id in (select call_id from dispatched)
       and f.type in ('assignment.acknowledged', 'assignment.arrived', 'assignment.reported',
                      'assignment.declined', 'assignment.escalated')
     group by f.assignment_id
)
select d.month, d.department,
       count(*) as dispatched,
       count(*) filter (where fo.ack_at <= d.ack_due) as ack_on_time,
       count(*) filter (where fo.arrive_at <= d.arrive_due) as arrive_on_time,
       count(*) filter (where fo.report_at <= d.resolve_due) as resolve_on_time,
       percentile_cont(0.5) within group (order by extract(epoch from fo.ack_at - d.dispatched_at)) as ack_p50_s,
       percentile_cont(0.9) within group (order by extract(epoch from fo.ack_at - d.dispatched_at)) as ack_p90_s,
       coalesce(sum(fo.transfers), 0) as transfers,
       coalesce(sum(fo.escalations), 0) as escalations
  from dispatched d
  left join follow fo on fo.assignment_id = d.assignment_id
 group by d.month, d.department
 order by d.month, d.department
"""

# 15 event slots per call: call.created, then per assignment (2 departments): dispatched, acknowledged,
# arrived, reported, accepted, escalated (only when the ack was late), declined (1 in 20). Written straight
# into ``events`` (no hash chain, no projections): this is a read figure. $1 calls, $2 first call's time,
# $3 span in seconds, $4 township ids, $5 department codes, $6 a sequence offset (above what the log holds).
GENERATE_EVENTS_SQL = r"""
insert into events (township_id, seq, call_id, assignment_id, type, actor_id, actor_role, actor_name, at, body,
                    audience, call_state, assignment_state, command_id, prev_hash, hash)
select x.tid, x.seq, x.call_id, x.aid, x.type, null, x.role, x.actor, x.at, x.body, x.audience,
       'dispatched', x.astate, null, '\x00'::bytea, '\x00'::bytea
  from (
    select c.tid, $6::bigint + (c.i / array_length($4::int[], 1)) * 15 + s.k + 1 as seq, c.call_id,
           case when s.k = 0 then null else a.aid end as aid,
           case sl.slot
             when -1 then 'call.created' when 0 then 'assignment.dispatched'
             when 1 then 'assignment.acknowledged' when 2 then 'assignment.arrived'
             when 3 then 'assignment.reported' when 4 then 'assignment.accepted'
             when 5 then case when a.ack_s > 600 then 'assignment.escalated' end
             when 6 then case when a.r % 20 = 0 then 'assignment.declined' end
           end as type,
           case when sl.slot in (1, 2, 3, 6) then 'liaison' when sl.slot = 5 then 'system' else 'operator' end as role,
           case when sl.slot in (1, 2, 3, 6) then '联络员' when sl.slot = 5 then 'SLA' else '操作员' end as actor,
           c.t + make_interval(secs => case sl.slot when -1 then 0 when 0 then 0 when 1 then a.ack_s
                                  when 2 then a.arr_s when 3 then a.rep_s when 4 then a.rep_s + 3600
                                  when 5 then 600 else 200 end) as at,
           case sl.slot
             when -1 then jsonb_build_object('township_id', c.tid, 'number', 'SC-' || c.i, 'source', 'hotline_12345',
                          'category', 'noise', 'title', '夜间施工噪音扰民，居民反映无法入睡',
                          'description', '群众通过12345热线反映：该处自晚上十点起持续有施工噪音，请尽快派员到场处置。',
                          'address', '汶上县义桥镇幸福路与建设街交叉口东50米', 'priority', 'normal',
                          'reporter_name', '张建国', 'reporter_phone', '13812345678')
             when 0 then jsonb_build_object('target', a.dep, 'ack_due', to_jsonb(c.t + interval '600 s'),
                          'arrive_due', to_jsonb(c.t + interval '3600 s'),
                          'resolve_due', to_jsonb(c.t + interval '86400 s'), 'transferred_from', null,
                          'call', jsonb_build_object('number', 'SC-' || c.i, 'category', 'noise',
                                  'title', '夜间施工噪音扰民，居民反映无法入睡', 'address', '汶上县义桥镇幸福路',
                                  'priority', 'normal', 'source', 'hotline_12345'))
             when 2 then '{"lat": 35.73, "lon": 116.49}'::jsonb
             when 3 then '{"result": "已到场处置，施工方已停工整改"}'::jsonb
             when 5 then jsonb_build_object('deadline_kind', 'ack', 'level', 1,
                          'deadline', to_jsonb(c.t + interval '600 s'), 'due', to_jsonb(c.t + interval '600 s'),
                          'fired_at', to_jsonb(c.t + interval '600.02 s'), 'lateness_ms', 20)
             when 6 then '{"reason": "不属于本部门职责", "suggested_target": null}'::jsonb
             else '{}'::jsonb
           end as body,
           array[a.dep] as audience,
           case sl.slot when -1 then null when 0 then 'dispatched' when 1 then 'acknowledged' when 2 then 'on_scene'
                when 3 then 'reported' when 4 then 'accepted' when 5 then 'dispatched' else 'declined' end as astate
      from (select i, ($4::int[])[i % array_length($4::int[], 1) + 1] as tid, md5('c' || i)::uuid as call_id,
                   $2::timestamptz + make_interval(secs => i::float8 * $3::float8 / $1::float8) as t
              from generate_series(0, $1::int - 1) i) c
     cross join generate_series(0, 14) s(k)
     cross join lateral (select (s.k - 1) / 7 as j, case when s.k = 0 then -1 else (s.k - 1) % 7 end as slot) sl
     cross join lateral (
        select md5('a' || c.i || ':' || sl.j)::uuid as aid,
               ($5::text[])[((c.i + sl.j * (1 + (c.i / 7) % 6)) % 7) + 1] as dep,
               r, 30 + r % 900 as ack_s, 30 + r % 900 + 300 + (r * 7) % 3000 as arr_s,
               30 + r % 900 + 300 + (r * 7) % 3000 + 3600 + (r * 13) % 90000 as rep_s
          from (select ((c.i * 2 + sl.j)::bigint * 2654435761) % 1000003 as r) rr) a
  ) x
 where x.type is not null
"""
EVENTS_PER_CALL = 11.82  # 1 + 2 × (5 + P(late ack) 0.366 + P(declined) 0.05), measured on the generator above
