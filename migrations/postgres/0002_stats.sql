-- Per-user statistics kept up to date in the same transaction as every activity write, so that
-- reading them costs O(1) rows however long a user's history is. Each row is per *scope*: the
-- owner's view counts every activity, a friend's view friends-only and public ones, the public
-- view public ones only (see domain::StatsScope).

-- Bumped (and so row-locked) first by every transaction that changes a user's statistics:
-- concurrent writers for one user serialise there, and cached statistics are keyed by it.
ALTER TABLE users ADD COLUMN stats_version BIGINT NOT NULL DEFAULT 0;

CREATE TABLE stats_totals (
    user_id        UUID     NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scope          TEXT    NOT NULL CHECK (scope IN ('owner', 'friends', 'public')),
    activity_count BIGINT    NOT NULL,
    -- Millimetres, so that adding and removing activities is exact integer arithmetic.
    distance_mm    BIGINT    NOT NULL,
    duration_s     BIGINT    NOT NULL,
    PRIMARY KEY (user_id, scope)
);

-- How many activities each active local day has; a day's row exists while it is non-zero.
CREATE TABLE stats_days (
    user_id        UUID     NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scope          TEXT    NOT NULL,
    local_day      INTEGER NOT NULL,
    activity_count INTEGER NOT NULL,
    PRIMARY KEY (user_id, scope, local_day)
);

-- Maximal runs of consecutive active days (islands), inclusive.
CREATE TABLE stats_runs (
    user_id   UUID     NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scope     TEXT    NOT NULL,
    start_day INTEGER NOT NULL,
    end_day   INTEGER NOT NULL,
    length    INTEGER NOT NULL,
    PRIMARY KEY (user_id, scope, start_day)
);
CREATE INDEX stats_runs_end ON stats_runs (user_id, scope, end_day);
CREATE INDEX stats_runs_longest ON stats_runs (user_id, scope, length DESC);

-- Backfill from activities stored before this migration.
INSERT INTO stats_totals (user_id, scope, activity_count, distance_mm, duration_s)
SELECT a.user_id, s.scope, count(*), sum(CAST(round(a.distance_m * 1000) AS BIGINT)), sum(a.duration_s)
FROM activities a
JOIN (SELECT 'owner' AS scope UNION ALL SELECT 'friends' UNION ALL SELECT 'public') s
  ON s.scope = 'owner'
  OR (s.scope = 'friends' AND a.visibility IN ('friends', 'public'))
  OR (s.scope = 'public' AND a.visibility = 'public')
GROUP BY a.user_id, s.scope;

INSERT INTO stats_days (user_id, scope, local_day, activity_count)
SELECT a.user_id, s.scope, a.local_day, count(*)
FROM activities a
JOIN (SELECT 'owner' AS scope UNION ALL SELECT 'friends' UNION ALL SELECT 'public') s
  ON s.scope = 'owner'
  OR (s.scope = 'friends' AND a.visibility IN ('friends', 'public'))
  OR (s.scope = 'public' AND a.visibility = 'public')
GROUP BY a.user_id, s.scope, a.local_day;

INSERT INTO stats_runs (user_id, scope, start_day, end_day, length)
SELECT user_id, scope, min(local_day), max(local_day), max(local_day) - min(local_day) + 1
FROM (
    SELECT user_id, scope, local_day,
           local_day - ROW_NUMBER() OVER (PARTITION BY user_id, scope ORDER BY local_day) AS island
    FROM stats_days
) days
GROUP BY user_id, scope, island;
