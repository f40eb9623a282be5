-- Dockhand server schema, version 6: movements by the document they name (ASN, pick list, count session), for the
-- dashboard's receipt and pick-list progress, which must not walk the whole history. Partial: movements without a
-- reference (most receipts at a dock without an ASN, moves, put-aways) cost ingest nothing more; one naming a
-- document costs one more index entry. `server_seq` second, so a document's movements come in commit order.
CREATE INDEX movements_reference ON movements (reference, server_seq) WHERE reference IS NOT NULL;
