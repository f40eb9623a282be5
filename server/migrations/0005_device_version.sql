-- Dockhand server schema, version 5: the software each device runs, as its last authenticated request named it in
-- `User-Agent` (agents send `dockhand-agent/<version>`), for the office's device list. Written with last_seen by
-- the same throttled update (see server/src/devices/postgres.rs); NULL until a device sends one. The server keeps
-- at most 128 printable ASCII characters of it.
ALTER TABLE devices ADD COLUMN user_agent text CHECK (length(user_agent) <= 128);
