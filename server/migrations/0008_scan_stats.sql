-- Dockhand server schema, version 8: devices' refused-scan counters, for the office's pick-accuracy report.
--
-- A refused scan is not a movement. Devices count refusals per UTC hour, operator and reason and report the
-- running totals (POST /v1/sync/scan-stats); the server keeps the largest total per key, so a resent or late
-- report is harmless. operator is '' when nobody was signed in (a primary key column cannot be NULL).

CREATE TABLE scan_stats (
    site      text COLLATE "C" NOT NULL,
    hour      timestamptz NOT NULL,
    device_id text COLLATE "C" NOT NULL,
    operator  text COLLATE "C" NOT NULL,
    reason    text COLLATE "C" NOT NULL,
    count     bigint NOT NULL CHECK (count >= 0),
    PRIMARY KEY (site, hour, device_id, operator, reason)
);
