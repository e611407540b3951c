-- The support desk's data: customers, products, orders and their items, which the tools read
-- and change; the journal of every tool call; and what calls did (refunds, escalations, bug
-- reports, password resets), each row written in the same transaction as its call's move to
-- `executed`. Money is whole cents. A ticket handed to a person is `escalated`.

ALTER TABLE tickets DROP CONSTRAINT tickets_status_check;
ALTER TABLE tickets ADD CONSTRAINT tickets_status_check CHECK (status IN
    ('pending', 'processing', 'completed', 'failed_permanent', 'awaiting_approval', 'escalated'));

CREATE TABLE customers (
    id                   text        PRIMARY KEY,
    email                text        NOT NULL,
    name                 text        NOT NULL,
    phone                text,
    tier                 text        NOT NULL DEFAULT 'standard',
    lifetime_value_cents bigint      NOT NULL DEFAULT 0 CHECK (lifetime_value_cents >= 0),
    address_line         text        NOT NULL DEFAULT '',
    city                 text        NOT NULL DEFAULT '',
    region               text        NOT NULL DEFAULT '',
    postal_code          text        NOT NULL DEFAULT '',
    country              text        NOT NULL DEFAULT '',
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX customers_lower_id_idx ON customers (lower(id));
CREATE UNIQUE INDEX customers_lower_email_idx ON customers (lower(email));

CREATE TABLE products (
    id          text        PRIMARY KEY,
    name        text        NOT NULL,
    description text        NOT NULL DEFAULT '',
    price_cents bigint      NOT NULL CHECK (price_cents >= 0),
    category    text        NOT NULL,
    in_stock    boolean     NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE orders (
    id                  text        PRIMARY KEY,
    customer_id         text        NOT NULL REFERENCES customers (id),
    status              text        NOT NULL CHECK (status IN ('pending', 'processing', 'shipped', 'delivered',
                                                    'cancelled', 'refunded', 'partially_refunded')),
    total_cents         bigint      NOT NULL CHECK (total_cents >= 0),
    refunded_cents      bigint      NOT NULL DEFAULT 0 CHECK (refunded_cents >= 0 AND refunded_cents <= total_cents),
    carrier             text,
    tracking_number     text,
    placed_at           timestamptz NOT NULL,
    shipped_at          timestamptz,
    delivered_at        timestamptz,
    estimated_delivery  timestamptz,
    ship_address_line   text        NOT NULL DEFAULT '',
    ship_city           text        NOT NULL DEFAULT '',
    ship_region         text        NOT NULL DEFAULT '',
    ship_postal_code    text        NOT NULL DEFAULT '',
    ship_country        text        NOT NULL DEFAULT '',
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX orders_lower_id_idx ON orders (lower(id));
CREATE INDEX orders_customer_idx ON orders (customer_id, placed_at DESC);

CREATE TABLE order_items (
    order_id         text        NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    product_id       text        NOT NULL REFERENCES products (id),
    quantity         integer     NOT NULL CHECK (quantity > 0),
    unit_price_cents bigint      NOT NULL CHECK (unit_price_cents >= 0),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, product_id)
);

CREATE TABLE tool_calls (
    -- Orders a ticket's calls as they were proposed.
    seq         bigserial   PRIMARY KEY,
    call_id     uuid        NOT NULL UNIQUE,
    ticket_id   uuid        NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    tool        text        NOT NULL,
    args        jsonb       NOT NULL,
    status      text        NOT NULL CHECK (status IN ('requested', 'awaiting_approval', 'approved', 'rejected',
                                                       'executed', 'failed')),
    result      jsonb,
    llm_call_id text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    executed_at timestamptz,
    UNIQUE (ticket_id, call_id)
);
CREATE INDEX tool_calls_ticket_idx ON tool_calls (ticket_id, seq);

-- Refunds ticketflow made. The order may live in a company's own order service (no foreign
-- key to orders); `external_id` is then that service's id for the refund.
CREATE TABLE refunds (
    id           text        PRIMARY KEY,
    order_id     text        NOT NULL,
    ticket_id    uuid        NOT NULL REFERENCES tickets (id),
    call_id      uuid        NOT NULL UNIQUE REFERENCES tool_calls (call_id),
    amount_cents bigint      NOT NULL CHECK (amount_cents > 0),
    reason       text        NOT NULL,
    status       text        NOT NULL DEFAULT 'completed',
    approval_id  uuid,
    external_id  text,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refunds_order_idx ON refunds (order_id, created_at);

CREATE TABLE escalations (
    id               text        PRIMARY KEY,
    ticket_id        uuid        NOT NULL REFERENCES tickets (id),
    call_id          uuid        NOT NULL UNIQUE REFERENCES tool_calls (call_id),
    reason           text        NOT NULL,
    suggested_action text        NOT NULL,
    status           text        NOT NULL DEFAULT 'open',
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX escalations_ticket_idx ON escalations (ticket_id);

CREATE TABLE bug_reports (
    id           text        PRIMARY KEY,
    ticket_id    uuid        NOT NULL REFERENCES tickets (id),
    call_id      uuid        NOT NULL UNIQUE REFERENCES tool_calls (call_id),
    title        text        NOT NULL,
    description  text        NOT NULL,
    priority     text        NOT NULL CHECK (priority IN ('low', 'medium', 'high', 'critical')),
    external_url text,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX bug_reports_ticket_idx ON bug_reports (ticket_id);

-- A reset's token is stored hashed; the e-mail that carries it waits in `message` until it is
-- delivered.
CREATE TABLE password_resets (
    id           text        PRIMARY KEY,
    ticket_id    uuid        NOT NULL REFERENCES tickets (id),
    call_id      uuid        NOT NULL UNIQUE REFERENCES tool_calls (call_id),
    customer_id  text        NOT NULL,
    email        text        NOT NULL,
    token_hash   text        NOT NULL,
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz,
    email_status text        NOT NULL DEFAULT 'queued',
    message      jsonb,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX password_resets_ticket_idx ON password_resets (ticket_id);

ALTER TABLE customers ENABLE ROW LEVEL SECURITY;
ALTER TABLE products ENABLE ROW LEVEL SECURITY;
ALTER TABLE orders ENABLE ROW LEVEL SECURITY;
ALTER TABLE order_items ENABLE ROW LEVEL SECURITY;
ALTER TABLE tool_calls ENABLE ROW LEVEL SECURITY;
ALTER TABLE refunds ENABLE ROW LEVEL SECURITY;
ALTER TABLE escalations ENABLE ROW LEVEL SECURITY;
ALTER TABLE bug_reports ENABLE ROW LEVEL SECURITY;
ALTER TABLE password_resets ENABLE ROW LEVEL SECURITY;
