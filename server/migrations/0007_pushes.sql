-- Dockhand server schema, version 7: the history's numbering (server_seq) is kept per push, not per movement.
--
-- Every movement used to carry its own server_seq (a sequence value per row) and received_at, and server_seq had
-- a unique index: per movement one more index entry, one more nextval, 16 more bytes, for an order that pages of
-- the history read and nothing else. A push now reserves one contiguous range of server_seq for its new movements
-- and records it here, one row per push: movement i of the push (seq = pushes.seq + i) has server_seq =
-- pushes.server_seq + i. The history reads pushes in server_seq order and each push's movements by the primary
-- key of movements, in seq order. The numbers stay what they were: dense, drawn when a push writes (not when it
-- commits), exact for any page read after the pushes it covers have committed.

CREATE TABLE pushes (
    -- The server_seq of the push's first movement; its movements have server_seq .. server_seq + n - 1.
    server_seq  bigint PRIMARY KEY,
    device_id   text COLLATE "C" NOT NULL,
    -- The device seq of the push's first movement; its movements have seq .. seq + n - 1.
    seq         bigint NOT NULL CHECK (seq > 0),
    n           bigint NOT NULL CHECK (n > 0),
    site        text COLLATE "C" NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- Movements stored before this version: one push per run of one device's movements whose server_seq and seq both
-- advance by one (server_seq - seq is constant along such a run and changes at every gap), as they were stored.
INSERT INTO pushes (server_seq, device_id, seq, n, site, received_at)
SELECT min(server_seq), device_id, min(seq), count(*), site, received_at
FROM movements
GROUP BY device_id, server_seq - seq, site, received_at;

-- The sequence outlives the column that owned it.
ALTER SEQUENCE movements_server_seq_seq OWNED BY NONE;
ALTER SEQUENCE movements_server_seq_seq RENAME TO server_seq_seq;
ALTER TABLE movements DROP COLUMN server_seq, DROP COLUMN received_at;

-- n contiguous server_seq values; returns the first. nextval and setval together are not atomic, so every caller
-- holds a session advisory lock around them (ASCII "dockseqs"): for microseconds, not until its COMMIT, as a
-- transaction lock would (every push would wait for the previous one's commit). Sequence values are not
-- transactional: a push that rolls back leaves a gap in the numbering, as a rolled-back insert always did. The
-- lock is released on every error path, a query cancel included; a session that ends releases it too.
CREATE FUNCTION reserve_server_seq(n bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    first bigint;
BEGIN
    PERFORM pg_advisory_lock(7237112439356354931);
    BEGIN
        first := nextval('server_seq_seq');
        IF n > 1 THEN
            PERFORM setval('server_seq_seq', first + n - 1);
        END IF;
    EXCEPTION WHEN OTHERS OR QUERY_CANCELED THEN
        PERFORM pg_advisory_unlock(7237112439356354931);
        RAISE;
    END;
    PERFORM pg_advisory_unlock(7237112439356354931);
    RETURN first;
END
$$;

-- A movement's push: the device's last push starting at or before its seq (one index entry per push, not per
-- movement). The document index of migration 6 went with the column; documents' movements are found by
-- reference and numbered through their push.
CREATE INDEX pushes_device ON pushes (device_id, seq);
CREATE INDEX movements_reference ON movements (reference, device_id, seq) WHERE reference IS NOT NULL;
