-- Serves every query that walks a user's activities by local date: the scan-based statistics
-- (the independent recount that checks the maintained aggregates, `rebuild_stats` repairs, and
-- the seed's benchmark baseline). Distinct days then come pre-sorted from an index-only scan,
-- so the streak query needs no sort and no heap access.
CREATE INDEX activities_user_day ON activities (user_id, local_day, visibility);
