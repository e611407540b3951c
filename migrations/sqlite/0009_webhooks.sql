-- Outbound webhooks, as the PostgreSQL migration 0011: the endpoints registered at start-up,
-- and a delivery row per (event, endpoint) written by a trigger in the event's transaction.
CREATE TABLE webhook_endpoints (
    url        TEXT    PRIMARY KEY,
    active     INTEGER NOT NULL DEFAULT 1,
    updated_at TEXT    NOT NULL
);

CREATE TABLE webhook_deliveries (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id     TEXT    NOT NULL,
    endpoint     TEXT    NOT NULL,
    event_type   TEXT    NOT NULL,
    ticket_id    TEXT    NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    body         TEXT    NOT NULL,
    status       TEXT    NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    available_at TEXT    NOT NULL,
    retry_from   TEXT    NOT NULL,
    last_error   TEXT,
    last_status  INTEGER,
    created_at   TEXT    NOT NULL,
    delivered_at TEXT,
    UNIQUE (event_id, endpoint)
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (available_at, id) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_ticket_idx ON webhook_deliveries (ticket_id, id);

CREATE TRIGGER ticket_events_webhooks AFTER INSERT ON ticket_events
WHEN (NEW.event_type = 'approval_decided'
      OR NEW.event_type = 'status_change' AND json_extract(NEW.payload, '$.to') IN ('completed', 'failed_permanent', 'escalated', 'awaiting_approval'))
BEGIN
    INSERT OR IGNORE INTO webhook_deliveries
        (event_id, endpoint, event_type, ticket_id, body, available_at, retry_from, created_at)
    SELECT NEW.id, e.url, k.kind, NEW.ticket_id,
           json_object('type', k.kind, 'timestamp', NEW.created_at, 'data',
               CASE WHEN k.kind = 'approval.decided'
                    THEN json_patch(NEW.payload, json_object('ticket', json(t.snapshot)))
                    ELSE json(t.snapshot) END),
           NEW.created_at, NEW.created_at, NEW.created_at
    FROM webhook_endpoints e,
         (SELECT CASE WHEN NEW.event_type = 'approval_decided' THEN 'approval.decided'
                      ELSE CASE json_extract(NEW.payload, '$.to')
                          WHEN 'completed' THEN 'ticket.completed'
                          WHEN 'failed_permanent' THEN 'ticket.failed'
                          WHEN 'escalated' THEN 'ticket.escalated'
                          WHEN 'awaiting_approval' THEN 'ticket.awaiting_approval' END END AS kind) k,
         (SELECT json_object('id', id, 'customer_id', customer_id, 'subject', subject, 'status', status,
                     'channel', channel, 'result', json(result), 'attempt_count', attempt_count, 'turn', turn,
                     'created_at', created_at, 'updated_at', updated_at, 'completed_at', completed_at) AS snapshot
          FROM tickets WHERE id = NEW.ticket_id) t
    WHERE e.active = 1;
END;
