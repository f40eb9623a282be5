-- Dockhand server schema, version 9: webhooks (server/src/webhooks, store/postgres_webhooks.rs).
--
-- Pushes write nothing here: the dispatcher follows the movement history (pushes, by server_seq) and
-- discrepancies (by id) with the cursors below. Office events (an ASN closed, a discrepancy resolved,
-- replenishment suggestions) go to webhook_outbox in the transaction of the change they report.

CREATE TABLE webhook_outbox (
    seq   bigserial PRIMARY KEY,
    -- The event as delivered ({"id", "kind", "occurred_at", "data"}), as text: delivered byte for byte.
    event text NOT NULL
);

CREATE TABLE webhook_endpoints (
    id              text COLLATE "C" PRIMARY KEY,
    -- The Endpoint as JSON (url, events, description, secret, created_at).
    body            text NOT NULL,
    last_success_at timestamptz,
    last_error      text
);

-- One row: where the dispatcher stands in each log. Written only by the node holding the dispatch lock, and then
-- only if it still holds the values the node read (compare and set), so no event is queued twice.
CREATE TABLE webhook_cursors (
    one           boolean PRIMARY KEY DEFAULT true CHECK (one),
    movements     bigint NOT NULL,
    discrepancies bigint NOT NULL,
    outbox        bigint NOT NULL
);

CREATE TABLE webhook_deliveries (
    id              bigserial PRIMARY KEY,
    endpoint        text COLLATE "C" NOT NULL,
    status          text NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    next_attempt_at timestamptz,
    -- The Delivery as JSON; id, endpoint, status and next_attempt_at above are the truth.
    body            text NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint, id);
