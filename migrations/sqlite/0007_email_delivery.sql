-- Outbound e-mail delivery state, as in the PostgreSQL migration 0009.
ALTER TABLE ticket_messages ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE ticket_messages ADD COLUMN available_at TEXT;
ALTER TABLE ticket_messages ADD COLUMN last_error TEXT;
CREATE INDEX ticket_messages_due_idx ON ticket_messages (available_at, id) WHERE status = 'queued';
CREATE INDEX ticket_messages_to_idx ON ticket_messages (lower(to_address), created_at)
    WHERE direction = 'outbound';

UPDATE ticket_messages SET status = 'recorded',
    metadata = json_set(metadata, '$.withheld', 'written before e-mail delivery existed')
WHERE status = 'queued';
