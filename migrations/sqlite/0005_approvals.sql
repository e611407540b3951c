-- A person's decision on a held tool call or reply, as in the PostgreSQL migration 0007.
CREATE TABLE approval_requests (
    id               TEXT    PRIMARY KEY,
    ticket_id        TEXT    NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    call_id          TEXT    NOT NULL UNIQUE REFERENCES tool_calls (call_id) ON DELETE CASCADE,
    action_type      TEXT    NOT NULL,
    action_params    TEXT    NOT NULL,
    status           TEXT    NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected')),
    requested_at     TEXT    NOT NULL,
    decided_at       TEXT,
    decided_by       TEXT,
    decision_reason  TEXT,
    edited_response  TEXT,
    version          INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX approval_requests_status_idx ON approval_requests (status, requested_at, id);
CREATE INDEX approval_requests_ticket_idx ON approval_requests (ticket_id, requested_at);
