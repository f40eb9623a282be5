-- Dockhand server schema, version 3: room for HOT updates of stock rows.
-- Every push updates each stock row it touches once, and concurrent pushes of one site update rows that share
-- pages. With full pages the new row version goes to another page, which costs a new entry in stock_pkey per
-- update (and bloats it); with free space on the page PostgreSQL updates in place (HOT, no index entry). Stock
-- holds one row per (site, location, gtin, lot), so the extra space is small next to the movements.
ALTER TABLE stock SET (fillfactor = 30);
