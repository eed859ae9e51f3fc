-- The owner's totals per ISO week (week_start: the Monday, as days since 1970-01-01), kept in
-- the same transaction as every activity write like the other statistics, so the dashboard's
-- chart reads at most `weeks` rows however long the history. A week's row exists while it
-- counts an activity.
CREATE TABLE stats_weeks (
    user_id        UUID    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    week_start     INTEGER NOT NULL,
    activity_count BIGINT  NOT NULL,
    distance_mm    BIGINT  NOT NULL,
    duration_s     BIGINT  NOT NULL,
    PRIMARY KEY (user_id, week_start)
);

-- Existing activities, counted once (% truncates toward zero; +10 keeps days before 1970 right).
INSERT INTO stats_weeks (user_id, week_start, activity_count, distance_mm, duration_s)
SELECT user_id, local_day - (((local_day % 7) + 10) % 7), COUNT(*),
       SUM(ROUND(distance_m * 1000)::BIGINT), SUM(duration_s)
FROM activities
GROUP BY user_id, local_day - (((local_day % 7) + 10) % 7);
