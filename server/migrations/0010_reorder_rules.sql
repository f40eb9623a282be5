-- Replenishment rules (issue 9): one per site and item; the suggestions are computed on read from stock.
CREATE TABLE reorder_rules (
    site text COLLATE "C" NOT NULL,
    gtin text COLLATE "C" NOT NULL,
    body jsonb NOT NULL,
    PRIMARY KEY (site, gtin)
);
