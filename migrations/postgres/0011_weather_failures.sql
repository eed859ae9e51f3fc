-- A failed weather API call for a place (0.1° cell) and UTC hour: for 10 minutes no lookup of
-- that place and hour calls the API again, whichever activity or replica asks.
CREATE TABLE weather_failures (
    cell_lat INTEGER NOT NULL,
    cell_lon INTEGER NOT NULL,
    hour_us  BIGINT  NOT NULL,
    until_us BIGINT  NOT NULL,
    PRIMARY KEY (cell_lat, cell_lon, hour_us)
);
