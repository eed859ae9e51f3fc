-- Best efforts, records and totals by month and sport.

-- Each track's best effort per distance (both the run and the ride sets, so a change of sport
-- needs no new read of the track), in tenths of a second as the API shows them. The owner,
-- sport, visibility and start are the activity's, copied so that "the three best of a sport
-- and distance that a reader may see" is one index range; the activity-write path keeps the
-- copies in step in the same transaction. `version` is the algorithm's (EFFORTS_VERSION).
CREATE TABLE best_efforts (
    activity_id   BLOB    NOT NULL REFERENCES activities (id) ON DELETE CASCADE,
    distance_mm   INTEGER NOT NULL,
    user_id       BLOB    NOT NULL,
    sport         TEXT    NOT NULL,
    visibility    TEXT    NOT NULL,
    started_at_us INTEGER NOT NULL,
    elapsed_ds    INTEGER NOT NULL,
    start_ds      INTEGER NOT NULL,
    end_ds        INTEGER NOT NULL,
    version       INTEGER NOT NULL,
    PRIMARY KEY (activity_id, distance_mm)
) STRICT;
CREATE INDEX best_efforts_ranking ON best_efforts (user_id, sport, distance_mm, elapsed_ds, started_at_us, activity_id);
CREATE INDEX best_efforts_version ON best_efforts (version);

-- The algorithm version of the efforts an activity with a track has (NULL: none yet), so a
-- rebuild finds what is older than the server's, including tracks too short for any effort.
ALTER TABLE activities ADD COLUMN efforts_version INTEGER;

-- The climb a track measured (NULL for manual activities), for "biggest climb".
ALTER TABLE activities ADD COLUMN elevation_gain_m REAL
    GENERATED ALWAYS AS (json_extract(track, '$.elevation_gain_m')) VIRTUAL;
CREATE INDEX activities_longest ON activities (user_id, sport, distance_m DESC, started_at_us);
CREATE INDEX activities_climb ON activities (user_id, sport, elevation_gain_m DESC, started_at_us);

-- Totals per month of local date and sport (month_start: the 1st, as days since 1970-01-01),
-- kept with every activity write like the weekly totals. A row exists while it counts one.
CREATE TABLE stats_months (
    user_id        BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    month_start    INTEGER NOT NULL,
    sport          TEXT    NOT NULL,
    activity_count INTEGER NOT NULL,
    distance_mm    INTEGER NOT NULL,
    duration_s     INTEGER NOT NULL,
    gain_mm        INTEGER NOT NULL,
    PRIMARY KEY (user_id, month_start, sport)
) STRICT;

INSERT INTO stats_months (user_id, month_start, sport, activity_count, distance_mm, duration_s, gain_mm)
SELECT user_id,
       CAST(julianday(date(local_day * 86400, 'unixepoch', 'start of month')) - 2440587.5 AS INTEGER),
       sport, COUNT(*), SUM(CAST(ROUND(distance_m * 1000) AS INTEGER)), SUM(duration_s),
       SUM(CAST(ROUND(COALESCE(elevation_gain_m, 0) * 1000) AS INTEGER))
FROM activities
GROUP BY 1, 2, 3;
