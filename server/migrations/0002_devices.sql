-- Dockhand server schema, version 2: the device registry (see server/src/devices/postgres.rs).
-- With store = "postgres" this table, not the files in each node's data directory, holds device credentials, so a
-- device enrolled or revoked through any node (or `dockhand-server enroll --config`) is known to every node.

CREATE TABLE devices (
    -- Ids and sites follow devices::is_valid_name; 'office' is the server's own pseudo-device.
    device_id    text COLLATE "C" PRIMARY KEY
                 CHECK (device_id ~ '^[A-Za-z0-9._-]{1,64}$' AND device_id NOT IN ('.', '..', 'office')),
    site         text COLLATE "C" NOT NULL CHECK (site ~ '^[A-Za-z0-9._-]{1,64}$' AND site NOT IN ('.', '..')),
    -- SHA-256 of the bearer token, lowercase hex; the token itself is never stored. UNIQUE gives the index that
    -- authenticates a request with one lookup.
    token_sha256 text COLLATE "C" NOT NULL UNIQUE CHECK (token_sha256 ~ '^[0-9a-f]{64}$'),
    enrolled_at  timestamptz NOT NULL,
    revoked_at   timestamptz,
    -- Last authenticated push or pull, written at most every few seconds per device by each node.
    last_seen    timestamptz,
    -- Unacknowledged movements the device last reported, and when it reported them: a node writing late (its
    -- throttled write, or its flush at shutdown) must not replace a newer report that reached another node.
    backlog      bigint CHECK (backlog >= 0),
    backlog_at   timestamptz,
    CHECK ((backlog IS NULL) = (backlog_at IS NULL))
);
