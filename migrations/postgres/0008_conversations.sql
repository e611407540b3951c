-- Conversations: every message of a ticket, inbound and outbound, in order. A ticket's
-- `turn` counts the workflow's runs over its conversation: a reply to a completed ticket
-- starts the next turn, and each message names the turn that answers it (inbound) or that
-- wrote it (outbound).
ALTER TABLE tickets ADD COLUMN turn integer NOT NULL DEFAULT 1;

-- A step's event is written once per turn: each turn's checkpoints count their steps afresh.
ALTER TABLE ticket_events ADD COLUMN turn integer NOT NULL DEFAULT 1;
DROP INDEX ticket_events_step_once_idx;
CREATE UNIQUE INDEX ticket_events_step_once_idx ON ticket_events (ticket_id, turn, checkpoint_step)
    WHERE checkpoint_step IS NOT NULL;

CREATE TABLE ticket_messages (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ticket_id        uuid        NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    turn             integer     NOT NULL,
    direction        text        NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    channel          text        NOT NULL,
    from_address     text,
    to_address       text,
    subject          text        NOT NULL,
    -- The whole text as written, quoted history included.
    text             text        NOT NULL,
    -- What the workflow reads: the text without the quoted history.
    reply_text       text        NOT NULL,
    html             text,
    message_id       text        NOT NULL UNIQUE,
    in_reply_to      text,
    thread_references jsonb      NOT NULL DEFAULT '[]'::jsonb,
    provider         text,
    status           text        NOT NULL CHECK (status IN ('received', 'recorded', 'queued', 'sent', 'failed')),
    attachments      jsonb       NOT NULL DEFAULT '[]'::jsonb,
    metadata         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz
);
CREATE INDEX ticket_messages_ticket_idx ON ticket_messages (ticket_id, id);

-- Every ticket created before conversations existed gets its subject and body as its first
-- inbound message.
INSERT INTO ticket_messages (ticket_id, turn, direction, channel, from_address, subject, text, reply_text,
                             message_id, status, created_at)
SELECT id, 1, 'inbound', channel, customer_id, subject, body, body, '<' || id || '@ticketflow>', 'received',
       created_at
FROM tickets ORDER BY created_at, id;

-- Mailgun webhook tokens already accepted: a token seen again is a replay.
CREATE TABLE webhook_tokens (
    provider   text        NOT NULL,
    token      text        NOT NULL,
    seen_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, token)
);

ALTER TABLE ticket_messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_tokens ENABLE ROW LEVEL SECURITY;
