-- Outbound e-mail is delivered from `ticket_messages` itself: a `queued` message is the outbox
-- row of its delivery. `available_at` is when it is due (a claim hides it until then, a failed
-- attempt delays it), `attempts` counts the attempts begun and `last_error` says why the last
-- one failed, so a message that is still waiting or that failed shows why on the ticket.
ALTER TABLE ticket_messages ADD COLUMN attempts integer NOT NULL DEFAULT 0;
ALTER TABLE ticket_messages ADD COLUMN available_at timestamptz;
ALTER TABLE ticket_messages ADD COLUMN last_error text;
CREATE INDEX ticket_messages_due_idx ON ticket_messages (available_at, id) WHERE status = 'queued';
-- The per-address limit on automatic replies counts what went to an address in the last hour.
CREATE INDEX ticket_messages_to_idx ON ticket_messages (lower(to_address), created_at)
    WHERE direction = 'outbound';

-- Replies written before delivery existed were never meant to go out now, long after: they
-- stay on their conversations as recorded.
UPDATE ticket_messages SET status = 'recorded',
    metadata = metadata || '{"withheld": "written before e-mail delivery existed"}'::jsonb
WHERE status = 'queued';
