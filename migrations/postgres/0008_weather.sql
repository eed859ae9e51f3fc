-- Weather at the start of an activity. The start point is the owner's to see; the weather is
-- one JSON value (an observation and its source), written by the `weather.enrich` job.
ALTER TABLE activities
    ADD COLUMN start_lat DOUBLE PRECISION,
    ADD COLUMN start_lon DOUBLE PRECISION,
    ADD COLUMN weather_status TEXT NOT NULL DEFAULT 'none'
        CHECK (weather_status IN ('none', 'pending', 'done', 'unavailable')),
    ADD COLUMN weather TEXT;

-- Observations by place (rounded to 0.1°, in tenths of a degree) and UTC hour: one answer of
-- the external API serves every activity of the same place and hour, and stands in for nearby
-- hours when the API is slow.
CREATE TABLE weather_observations (
    cell_lat         INTEGER          NOT NULL,
    cell_lon         INTEGER          NOT NULL,
    hour_us          BIGINT           NOT NULL,
    temperature_c    DOUBLE PRECISION NOT NULL,
    wind_speed_ms    DOUBLE PRECISION NOT NULL,
    precipitation_mm DOUBLE PRECISION NOT NULL,
    code             INTEGER          NOT NULL,
    fetched_at_us    BIGINT           NOT NULL,
    PRIMARY KEY (cell_lat, cell_lon, hour_us)
);
