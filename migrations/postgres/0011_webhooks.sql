-- Outbound webhooks. The endpoints are the processes' WEBHOOK_URLS, registered at start-up. A
-- delivery row per (event, endpoint) is written by a trigger on ticket_events, in the very
-- transaction that writes the event, with the body it will carry: a webhook is never lost
-- between an event and its delivery, and its body is the ticket as that event left it.
CREATE TABLE webhook_endpoints (
    url        text        PRIMARY KEY,
    active     boolean     NOT NULL DEFAULT true,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webhook_deliveries (
    id           bigserial   PRIMARY KEY,
    event_id     uuid        NOT NULL,
    endpoint     text        NOT NULL,
    event_type   text        NOT NULL,
    ticket_id    uuid        NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    body         jsonb       NOT NULL,
    status       text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts     integer     NOT NULL DEFAULT 0,
    available_at timestamptz NOT NULL DEFAULT now(),
    -- Retries stop once this is WEBHOOK_RETRY_HOURS old (a manual retry starts it again).
    retry_from   timestamptz NOT NULL DEFAULT now(),
    last_error   text,
    last_status  integer,
    created_at   timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz,
    UNIQUE (event_id, endpoint)
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (available_at, id) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_ticket_idx ON webhook_deliveries (ticket_id, id);
ALTER TABLE webhook_endpoints ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_deliveries ENABLE ROW LEVEL SECURITY;

-- `SET search_path FROM CURRENT`: the tables are the migration's schema's, whatever the
-- writer's search_path (behind a transaction pooler there is none).
CREATE FUNCTION queue_webhooks() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path FROM CURRENT
AS $$
DECLARE
    kind text;
    data jsonb;
BEGIN
    IF NEW.event_type = 'approval_decided' THEN
        kind := 'approval.decided';
    ELSE
        kind := CASE NEW.payload->>'to'
            WHEN 'completed' THEN 'ticket.completed'
            WHEN 'failed_permanent' THEN 'ticket.failed'
            WHEN 'escalated' THEN 'ticket.escalated'
            WHEN 'awaiting_approval' THEN 'ticket.awaiting_approval'
        END;
    END IF;
    IF kind IS NULL OR NOT EXISTS (SELECT 1 FROM webhook_endpoints WHERE active) THEN
        RETURN NULL;
    END IF;
    SELECT jsonb_build_object(
        'id', t.id, 'customer_id', t.customer_id, 'subject', t.subject, 'status', t.status,
        'channel', t.channel, 'result', t.result, 'attempt_count', t.attempt_count, 'turn', t.turn,
        'created_at', t.created_at, 'updated_at', t.updated_at, 'completed_at', t.completed_at)
    INTO data FROM tickets t WHERE t.id = NEW.ticket_id;
    IF kind = 'approval.decided' THEN
        data := NEW.payload || jsonb_build_object('ticket', data);
    END IF;
    INSERT INTO webhook_deliveries (event_id, endpoint, event_type, ticket_id, body)
    SELECT NEW.id, e.url, kind, NEW.ticket_id,
           jsonb_build_object('type', kind,
                              'timestamp', to_char(NEW.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                              'data', data)
    FROM webhook_endpoints e WHERE e.active
    ON CONFLICT (event_id, endpoint) DO NOTHING;
    RETURN NULL;
END
$$;

CREATE TRIGGER ticket_events_webhooks AFTER INSERT ON ticket_events
    FOR EACH ROW WHEN (NEW.event_type IN ('status_change', 'approval_decided'))
    EXECUTE FUNCTION queue_webhooks();
