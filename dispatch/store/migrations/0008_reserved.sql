-- Reserved for the attachments helper's migration (issue #16, branch "attach"). This placeholder keeps the
-- numbers gap-free on the open311 branch until that branch merges; the merge replaces it with its file.
select 1;
