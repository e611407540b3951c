-- A person's decision on a held tool call (or a held reply, `send_reply`): one row per call,
-- `pending` until decided, then `approved` or `rejected` with who decided, when and why.
-- `version` counts the row's changes, for clients that show it.
CREATE TABLE approval_requests (
    id               uuid        PRIMARY KEY,
    ticket_id        uuid        NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    call_id          uuid        NOT NULL UNIQUE REFERENCES tool_calls (call_id) ON DELETE CASCADE,
    action_type      text        NOT NULL,
    action_params    jsonb       NOT NULL,
    status           text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected')),
    requested_at     timestamptz NOT NULL DEFAULT now(),
    decided_at       timestamptz,
    decided_by       text,
    decision_reason  text,
    edited_response  text,
    version          integer     NOT NULL DEFAULT 1
);
-- The approvals queue: pending first, oldest first.
CREATE INDEX approval_requests_status_idx ON approval_requests (status, requested_at, id);
CREATE INDEX approval_requests_ticket_idx ON approval_requests (ticket_id, requested_at);

ALTER TABLE approval_requests ENABLE ROW LEVEL SECURITY;
