-- Full-text search over a ticket's subject, body, customer and reply. An expression index, not
-- a stored column: the expression is computed when those columns change, while the frequent
-- status and lease updates (which touch none of them) stay heap-only.
CREATE INDEX tickets_search_idx ON tickets USING gin (
    to_tsvector('english'::regconfig,
        subject || ' ' || body || ' ' || customer_id || ' ' || coalesce(result->>'final_response', ''))
);
-- Lists ordered by when a ticket last changed.
CREATE INDEX tickets_updated_idx ON tickets (updated_at DESC, id);
