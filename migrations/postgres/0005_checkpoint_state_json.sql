-- Checkpoint states are stored as `json` (the text as written, checked to be valid JSON)
-- instead of `jsonb`: the database never looks inside a state, and building jsonb's binary
-- form of every state was ~4 % of the database's CPU in the durable benchmark. States read
-- back the same to the runtime (serde does not care about key order or whitespace).
-- This rewrites the table: on a long history, prune it first or run it in a quiet hour.
ALTER TABLE workflow_checkpoints ALTER COLUMN state TYPE json USING state::json;

-- Changing a column's type resets its compression: lz4 again, as in 0004.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_settings
               WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
        ALTER TABLE workflow_checkpoints ALTER COLUMN state SET COMPRESSION lz4;
    END IF;
END
$$;
