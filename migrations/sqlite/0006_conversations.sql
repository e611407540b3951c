-- Conversations and webhook tokens, as in the PostgreSQL migration 0008.
ALTER TABLE tickets ADD COLUMN turn INTEGER NOT NULL DEFAULT 1;

-- A step's event is written once per turn: each turn's checkpoints count their steps afresh.
ALTER TABLE ticket_events ADD COLUMN turn INTEGER NOT NULL DEFAULT 1;
DROP INDEX ticket_events_step_once_idx;
CREATE UNIQUE INDEX ticket_events_step_once_idx ON ticket_events (ticket_id, turn, checkpoint_step)
    WHERE checkpoint_step IS NOT NULL;

CREATE TABLE ticket_messages (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id         TEXT    NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    turn              INTEGER NOT NULL,
    direction         TEXT    NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    channel           TEXT    NOT NULL,
    from_address      TEXT,
    to_address        TEXT,
    subject           TEXT    NOT NULL,
    text              TEXT    NOT NULL,
    reply_text        TEXT    NOT NULL,
    html              TEXT,
    message_id        TEXT    NOT NULL UNIQUE,
    in_reply_to       TEXT,
    thread_references TEXT    NOT NULL DEFAULT '[]',
    provider          TEXT,
    status            TEXT    NOT NULL CHECK (status IN ('received', 'recorded', 'queued', 'sent', 'failed')),
    attachments       TEXT    NOT NULL DEFAULT '[]',
    metadata          TEXT    NOT NULL DEFAULT '{}',
    created_at        TEXT    NOT NULL,
    sent_at           TEXT
);
CREATE INDEX ticket_messages_ticket_idx ON ticket_messages (ticket_id, id);

INSERT INTO ticket_messages (ticket_id, turn, direction, channel, from_address, subject, text, reply_text,
                             message_id, status, created_at)
SELECT id, 1, 'inbound', channel, customer_id, subject, body, body, '<' || id || '@ticketflow>', 'received',
       created_at
FROM tickets ORDER BY created_at, id;

CREATE TABLE webhook_tokens (
    provider   TEXT NOT NULL,
    token      TEXT NOT NULL,
    seen_at    TEXT NOT NULL,
    PRIMARY KEY (provider, token)
);
