-- Dockhand server schema, version 1 (see server/src/store/postgres.rs for the why of each table).
-- Key texts use COLLATE "C" so ORDER BY is byte order, the same order the sled backend returns.

-- Per-device high-water mark. A push locks its device's row (SELECT ... FOR UPDATE), which serialises every
-- batch of one device across all server nodes.
CREATE TABLE device_hw (
    device_id text COLLATE "C" PRIMARY KEY,
    hw        bigint NOT NULL CHECK (hw >= 0)
);

-- Every applied movement, exactly once. `body` is the movement's JSON: replays are compared with it by value.
CREATE TABLE movements (
    device_id     text COLLATE "C" NOT NULL,
    seq           bigint NOT NULL CHECK (seq > 0),
    server_seq    bigserial NOT NULL UNIQUE,
    site          text COLLATE "C" NOT NULL,
    at            timestamptz NOT NULL,
    kind          text NOT NULL,
    gtin          text COLLATE "C" NOT NULL,
    lot           text COLLATE "C",
    from_location text COLLATE "C",
    to_location   text COLLATE "C",
    reference     text COLLATE "C",
    qty           bigint NOT NULL CHECK (qty >= 0),
    body          text NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, seq)
);
-- Book quantity at a count's time and stock as of a past time: by item, then device time.
CREATE INDEX movements_site_gtin_at ON movements (site, gtin, at);

-- Current stock. `lot_key` is '' for "no lot" and '+' || lot otherwise, so "no lot" stays distinct from an empty
-- lot, sorts first, and the primary key needs no NULL handling. Rows that sum to zero are kept (qty 0) so that
-- concurrent pushes always have a row to lock; readers skip them.
CREATE TABLE stock (
    site     text COLLATE "C" NOT NULL,
    location text COLLATE "C" NOT NULL,
    gtin     text COLLATE "C" NOT NULL,
    lot_key  text COLLATE "C" NOT NULL,
    lot      text COLLATE "C",
    qty      bigint NOT NULL,
    PRIMARY KEY (site, location, gtin, lot_key),
    CHECK (lot_key = CASE WHEN lot IS NULL THEN '' ELSE '+' || lot END)
);

-- Units received against each ASN per GTIN and lot (receipts naming the ASN), for over and short receipts.
CREATE TABLE asn_received (
    asn_id  text COLLATE "C" NOT NULL,
    gtin    text COLLATE "C" NOT NULL,
    lot_key text COLLATE "C" NOT NULL,
    qty     bigint NOT NULL,
    PRIMARY KEY (asn_id, gtin, lot_key)
);

CREATE TABLE sites (
    code text COLLATE "C" PRIMARY KEY,
    body jsonb NOT NULL
);

CREATE TABLE items (
    gtin text COLLATE "C" PRIMARY KEY,
    body jsonb NOT NULL
);

CREATE TABLE locations (
    site text COLLATE "C" NOT NULL,
    code text COLLATE "C" NOT NULL,
    body jsonb NOT NULL,
    PRIMARY KEY (site, code)
);

CREATE TABLE asns (
    id     text COLLATE "C" PRIMARY KEY,
    site   text COLLATE "C" NOT NULL,
    status text NOT NULL,
    body   jsonb NOT NULL
);
CREATE INDEX asns_site ON asns (site, id);

CREATE TABLE pick_lists (
    id     text COLLATE "C" PRIMARY KEY,
    site   text COLLATE "C" NOT NULL,
    status text NOT NULL,
    body   jsonb NOT NULL
);
CREATE INDEX pick_lists_site ON pick_lists (site, id);

-- The compacted change feed devices pull. One row per entity (kind, scope, id): writing the entity again moves
-- its row to a new change_seq. `site` is NULL for global entities (items). Writers take an advisory lock before
-- drawing change_seq, so change_seq order is commit order and a cursor never skips a late commit.
CREATE SEQUENCE change_seq_seq;
CREATE TABLE changes (
    change_seq  bigint NOT NULL UNIQUE,
    entity_kind text NOT NULL,
    entity_id   text COLLATE "C" NOT NULL,
    site        text COLLATE "C",
    body        jsonb NOT NULL,
    PRIMARY KEY (entity_kind, entity_id)
);

-- Discrepancies for the office. `body` is the whole record; the id and status columns are authoritative.
CREATE TABLE discrepancies (
    id     bigserial PRIMARY KEY,
    site   text COLLATE "C" NOT NULL,
    kind   text NOT NULL,
    status text NOT NULL,
    body   jsonb NOT NULL
);
CREATE INDEX discrepancies_site ON discrepancies (site, id);
