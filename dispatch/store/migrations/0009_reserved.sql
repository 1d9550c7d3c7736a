-- Reserved: issue #16's migration 0009 lands here (attachments / Open311). This placeholder keeps the
-- numbers gap-free on the privacy branch until then; delete it when the real 0009 is merged.
select 1;
