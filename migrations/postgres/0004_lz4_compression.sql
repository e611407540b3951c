-- Checkpoint states and ticket results over about 2 KB are compressed when stored. lz4 does it
-- for a fraction of pglz's CPU (pglz was ~9 % of the database's CPU in the durable benchmark)
-- at a similar size. A server built without lz4 keeps pglz.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_settings
               WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
        ALTER TABLE workflow_checkpoints ALTER COLUMN state SET COMPRESSION lz4;
        ALTER TABLE tickets ALTER COLUMN result SET COMPRESSION lz4;
    END IF;
END
$$;
