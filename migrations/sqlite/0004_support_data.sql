-- no-transaction
-- The support desk's data, as in the PostgreSQL migration 0006: customers, products, orders
-- and their items, the tool-call journal, and what calls did. Money is whole cents.
--
-- A ticket handed to a person is `escalated`: SQLite cannot change a CHECK constraint, so
-- `tickets` is rebuilt (its foreign keys off meanwhile, which only works outside a
-- transaction; the rebuild is a transaction of its own).
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;
CREATE TABLE tickets_rebuilt (
    id               TEXT    PRIMARY KEY,
    customer_id      TEXT    NOT NULL,
    subject          TEXT    NOT NULL,
    body             TEXT    NOT NULL,
    status           TEXT    NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'processing', 'completed', 'failed_permanent', 'awaiting_approval',
                                       'escalated')),
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
INSERT INTO tickets_rebuilt (id, customer_id, subject, body, status, result, attempt_count, version, channel, metadata,
    content_hash, idempotency_key, worker_id, lease_epoch, lease_expires_at, heartbeat_at, created_at, started_at,
    completed_at, updated_at)
SELECT id, customer_id, subject, body, status, result, attempt_count, version, channel, metadata, content_hash,
    idempotency_key, worker_id, lease_epoch, lease_expires_at, heartbeat_at, created_at, started_at, completed_at,
    updated_at FROM tickets;
DROP TABLE tickets;
ALTER TABLE tickets_rebuilt RENAME TO tickets;
CREATE INDEX tickets_status_created_idx ON tickets (status, created_at);
CREATE INDEX tickets_customer_created_idx ON tickets (customer_id, created_at DESC);

CREATE TABLE customers (
    id                   TEXT    PRIMARY KEY COLLATE NOCASE,
    email                TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    name                 TEXT    NOT NULL,
    phone                TEXT,
    tier                 TEXT    NOT NULL DEFAULT 'standard',
    lifetime_value_cents INTEGER NOT NULL DEFAULT 0 CHECK (lifetime_value_cents >= 0),
    address_line         TEXT    NOT NULL DEFAULT '',
    city                 TEXT    NOT NULL DEFAULT '',
    region               TEXT    NOT NULL DEFAULT '',
    postal_code          TEXT    NOT NULL DEFAULT '',
    country              TEXT    NOT NULL DEFAULT '',
    created_at           TEXT    NOT NULL,
    updated_at           TEXT    NOT NULL
);

CREATE TABLE products (
    id          TEXT    PRIMARY KEY,
    name        TEXT    NOT NULL,
    description TEXT    NOT NULL DEFAULT '',
    price_cents INTEGER NOT NULL CHECK (price_cents >= 0),
    category    TEXT    NOT NULL,
    in_stock    INTEGER NOT NULL DEFAULT 1,
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL
);

CREATE TABLE orders (
    id                  TEXT    PRIMARY KEY COLLATE NOCASE,
    customer_id         TEXT    NOT NULL REFERENCES customers (id),
    status              TEXT    NOT NULL CHECK (status IN ('pending', 'processing', 'shipped', 'delivered',
                                                'cancelled', 'refunded', 'partially_refunded')),
    total_cents         INTEGER NOT NULL CHECK (total_cents >= 0),
    refunded_cents      INTEGER NOT NULL DEFAULT 0 CHECK (refunded_cents >= 0 AND refunded_cents <= total_cents),
    carrier             TEXT,
    tracking_number     TEXT,
    placed_at           TEXT    NOT NULL,
    shipped_at          TEXT,
    delivered_at        TEXT,
    estimated_delivery  TEXT,
    ship_address_line   TEXT    NOT NULL DEFAULT '',
    ship_city           TEXT    NOT NULL DEFAULT '',
    ship_region         TEXT    NOT NULL DEFAULT '',
    ship_postal_code    TEXT    NOT NULL DEFAULT '',
    ship_country        TEXT    NOT NULL DEFAULT '',
    created_at          TEXT    NOT NULL,
    updated_at          TEXT    NOT NULL
);
CREATE INDEX orders_customer_idx ON orders (customer_id, placed_at DESC);

CREATE TABLE order_items (
    order_id         TEXT    NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    product_id       TEXT    NOT NULL REFERENCES products (id),
    quantity         INTEGER NOT NULL CHECK (quantity > 0),
    unit_price_cents INTEGER NOT NULL CHECK (unit_price_cents >= 0),
    created_at       TEXT    NOT NULL,
    updated_at       TEXT    NOT NULL,
    PRIMARY KEY (order_id, product_id)
);

CREATE TABLE tool_calls (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id     TEXT    NOT NULL UNIQUE,
    ticket_id   TEXT    NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    tool        TEXT    NOT NULL,
    args        TEXT    NOT NULL,
    status      TEXT    NOT NULL CHECK (status IN ('requested', 'awaiting_approval', 'approved', 'rejected',
                                                   'executed', 'failed')),
    result      TEXT,
    llm_call_id TEXT,
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL,
    executed_at TEXT,
    UNIQUE (ticket_id, call_id)
);
CREATE INDEX tool_calls_ticket_idx ON tool_calls (ticket_id, seq);

CREATE TABLE refunds (
    id           TEXT    PRIMARY KEY,
    order_id     TEXT    NOT NULL COLLATE NOCASE,
    ticket_id    TEXT    NOT NULL REFERENCES tickets (id),
    call_id      TEXT    NOT NULL UNIQUE REFERENCES tool_calls (call_id),
    amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),
    reason       TEXT    NOT NULL,
    status       TEXT    NOT NULL DEFAULT 'completed',
    approval_id  TEXT,
    external_id  TEXT,
    created_at   TEXT    NOT NULL
);
CREATE INDEX refunds_order_idx ON refunds (order_id, created_at);

CREATE TABLE escalations (
    id               TEXT    PRIMARY KEY,
    ticket_id        TEXT    NOT NULL REFERENCES tickets (id),
    call_id          TEXT    NOT NULL UNIQUE REFERENCES tool_calls (call_id),
    reason           TEXT    NOT NULL,
    suggested_action TEXT    NOT NULL,
    status           TEXT    NOT NULL DEFAULT 'open',
    created_at       TEXT    NOT NULL
);
CREATE INDEX escalations_ticket_idx ON escalations (ticket_id);

CREATE TABLE bug_reports (
    id           TEXT    PRIMARY KEY,
    ticket_id    TEXT    NOT NULL REFERENCES tickets (id),
    call_id      TEXT    NOT NULL UNIQUE REFERENCES tool_calls (call_id),
    title        TEXT    NOT NULL,
    description  TEXT    NOT NULL,
    priority     TEXT    NOT NULL CHECK (priority IN ('low', 'medium', 'high', 'critical')),
    external_url TEXT,
    created_at   TEXT    NOT NULL
);
CREATE INDEX bug_reports_ticket_idx ON bug_reports (ticket_id);

CREATE TABLE password_resets (
    id           TEXT    PRIMARY KEY,
    ticket_id    TEXT    NOT NULL REFERENCES tickets (id),
    call_id      TEXT    NOT NULL UNIQUE REFERENCES tool_calls (call_id),
    customer_id  TEXT    NOT NULL,
    email        TEXT    NOT NULL,
    token_hash   TEXT    NOT NULL,
    expires_at   TEXT    NOT NULL,
    used_at      TEXT,
    email_status TEXT    NOT NULL DEFAULT 'queued',
    message      TEXT,
    created_at   TEXT    NOT NULL
);
CREATE INDEX password_resets_ticket_idx ON password_resets (ticket_id);
COMMIT;
PRAGMA foreign_keys = ON;
