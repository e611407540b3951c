-- ticketflow schema, PostgreSQL / Supabase.
--
-- Everything lives in the schema named by the connection's search_path (ticketflow by
-- default), so on Supabase none of it is exposed through the public REST API; row-level
-- security is enabled as a second lock (no policies: only the owning role, which bypasses RLS,
-- reads or writes).

CREATE TABLE tickets (
    id               uuid PRIMARY KEY,
    customer_id      text        NOT NULL,
    subject          text        NOT NULL,
    body             text        NOT NULL,
    status           text        NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'processing', 'completed', 'failed_permanent', 'awaiting_approval')),
    result           jsonb,
    attempt_count    integer     NOT NULL DEFAULT 0,
    version          bigint      NOT NULL DEFAULT 1,
    channel          text        NOT NULL DEFAULT 'api',
    metadata         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    -- What the id was derived from: the content hash (and the idempotency key, if one was given).
    content_hash     uuid        NOT NULL,
    idempotency_key  text,
    -- The lease of the worker processing the ticket (fencing: every checkpoint write checks
    -- lease_epoch).
    worker_id        text,
    lease_epoch      bigint      NOT NULL DEFAULT 0,
    lease_expires_at timestamptz,
    heartbeat_at     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    completed_at     timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tickets_status_created_idx ON tickets (status, created_at);
CREATE INDEX tickets_customer_created_idx ON tickets (customer_id, created_at DESC);

CREATE TABLE ticket_events (
    -- The sequence orders events; timestamps alone tie.
    seq             bigserial   PRIMARY KEY,
    id              uuid        NOT NULL UNIQUE,
    ticket_id       uuid        NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    event_type      text        NOT NULL,
    step_name       text,
    -- For step_complete events: the checkpoint step, unique per ticket, so a step can never be
    -- recorded as completed twice.
    checkpoint_step bigint,
    payload         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    request_id      text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ticket_events_ticket_idx ON ticket_events (ticket_id, seq);
CREATE UNIQUE INDEX ticket_events_step_once_idx ON ticket_events (ticket_id, checkpoint_step)
    WHERE checkpoint_step IS NOT NULL;

CREATE TABLE workflow_checkpoints (
    thread_id      text        NOT NULL,
    step           bigint      NOT NULL,
    checkpoint_id  uuid        NOT NULL UNIQUE,
    parent_id      uuid,
    completed_node text,
    next_node      text,
    state          jsonb       NOT NULL,
    graph_version  text        NOT NULL,
    interrupt      jsonb,
    metadata       jsonb       NOT NULL DEFAULT 'null'::jsonb,
    created_at     timestamptz NOT NULL,
    PRIMARY KEY (thread_id, step)
);

CREATE TABLE outbox (
    id           bigserial   PRIMARY KEY,
    ticket_id    uuid        NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    attempt      integer     NOT NULL DEFAULT 0,
    request_id   text,
    traceparent  text,
    available_at timestamptz NOT NULL DEFAULT now(),
    sent_at      timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_due_idx ON outbox (available_at) WHERE sent_at IS NULL;

ALTER TABLE tickets ENABLE ROW LEVEL SECURITY;
ALTER TABLE ticket_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE workflow_checkpoints ENABLE ROW LEVEL SECURITY;
ALTER TABLE outbox ENABLE ROW LEVEL SECURITY;
