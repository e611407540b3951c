-- ticketflow schema, SQLite (the embedded default). Same tables and meaning as the PostgreSQL
-- migrations: uuids as text, JSON as text, timestamps as RFC 3339 text in UTC.

CREATE TABLE tickets (
    id               TEXT    PRIMARY KEY,
    customer_id      TEXT    NOT NULL,
    subject          TEXT    NOT NULL,
    body             TEXT    NOT NULL,
    status           TEXT    NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'processing', 'completed', 'failed_permanent', 'awaiting_approval')),
    result           TEXT,
    attempt_count    INTEGER NOT NULL DEFAULT 0,
    version          INTEGER NOT NULL DEFAULT 1,
    channel          TEXT    NOT NULL DEFAULT 'api',
    metadata         TEXT    NOT NULL DEFAULT '{}',
    content_hash     TEXT    NOT NULL,
    idempotency_key  TEXT,
    worker_id        TEXT,
    lease_epoch      INTEGER NOT NULL DEFAULT 0,
    lease_expires_at TEXT,
    heartbeat_at     TEXT,
    created_at       TEXT    NOT NULL,
    started_at       TEXT,
    completed_at     TEXT,
    updated_at       TEXT    NOT NULL
);
CREATE INDEX tickets_status_created_idx ON tickets (status, created_at);
CREATE INDEX tickets_customer_created_idx ON tickets (customer_id, created_at DESC);

CREATE TABLE ticket_events (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT    NOT NULL UNIQUE,
    ticket_id       TEXT    NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    event_type      TEXT    NOT NULL,
    step_name       TEXT,
    checkpoint_step INTEGER,
    payload         TEXT    NOT NULL DEFAULT '{}',
    request_id      TEXT,
    created_at      TEXT    NOT NULL
);
CREATE INDEX ticket_events_ticket_idx ON ticket_events (ticket_id, seq);
CREATE UNIQUE INDEX ticket_events_step_once_idx ON ticket_events (ticket_id, checkpoint_step)
    WHERE checkpoint_step IS NOT NULL;

CREATE TABLE workflow_checkpoints (
    thread_id      TEXT    NOT NULL,
    step           INTEGER NOT NULL,
    checkpoint_id  TEXT    NOT NULL UNIQUE,
    parent_id      TEXT,
    completed_node TEXT,
    next_node      TEXT,
    state          TEXT    NOT NULL,
    graph_version  TEXT    NOT NULL,
    interrupt      TEXT,
    metadata       TEXT    NOT NULL DEFAULT 'null',
    created_at     TEXT    NOT NULL,
    PRIMARY KEY (thread_id, step)
);

CREATE TABLE outbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id    TEXT    NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    attempt      INTEGER NOT NULL DEFAULT 0,
    request_id   TEXT,
    traceparent  TEXT,
    available_at TEXT    NOT NULL,
    sent_at      TEXT,
    created_at   TEXT    NOT NULL
);
CREATE INDEX outbox_due_idx ON outbox (available_at) WHERE sent_at IS NULL;
