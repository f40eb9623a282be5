-- Dockhand server schema, version 4: the expiry date (GS1 AI 17, `YYYY-MM-DD`) of the goods in each stock row, so
-- the office sees lots with their expiry without reading movements. Set by the first movement into the row that
-- carries one; a lot has one expiry in practice, and a later different date does not overwrite it. NULL when no
-- movement named one (rows from before this version stay NULL).
ALTER TABLE stock ADD COLUMN expiry text COLLATE "C";
