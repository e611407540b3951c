-- The search index leaves `tickets` for a table of its own. As an expression index on `tickets`,
-- every update that was not heap-only (every claim and status change: `status` and `updated_at`
-- are indexed) computed to_tsvector over subject, body and reply again and inserted it into the
-- GIN index, whose pending list some writer then flushed. Here the words are indexed when they
-- change — a ticket's creation, a new reply — by triggers, as SQLite's FTS table is (its
-- migration 0008).
DROP INDEX tickets_search_idx;

CREATE TABLE ticket_search (
    ticket_id uuid     PRIMARY KEY REFERENCES tickets (id) ON DELETE CASCADE,
    document  tsvector NOT NULL
);
-- fastupdate off: each insertion goes into the index at once, instead of a pending list that
-- some unlucky insert (a ticket's creation) flushes whole.
CREATE INDEX ticket_search_document_idx ON ticket_search USING gin (document) WITH (fastupdate = off);
ALTER TABLE ticket_search ENABLE ROW LEVEL SECURITY;

INSERT INTO ticket_search (ticket_id, document)
SELECT id, to_tsvector('english'::regconfig,
           subject || ' ' || body || ' ' || customer_id || ' ' || coalesce(result->>'final_response', ''))
FROM tickets;

CREATE FUNCTION index_ticket_words() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path FROM CURRENT
AS $$
BEGIN
    INSERT INTO ticket_search (ticket_id, document)
    VALUES (NEW.id, to_tsvector('english'::regconfig,
        NEW.subject || ' ' || NEW.body || ' ' || NEW.customer_id || ' ' || coalesce(NEW.result->>'final_response', '')))
    ON CONFLICT (ticket_id) DO UPDATE SET document = EXCLUDED.document;
    RETURN NULL;
END
$$;

CREATE TRIGGER tickets_search_insert AFTER INSERT ON tickets
    FOR EACH ROW EXECUTE FUNCTION index_ticket_words();

-- Every transition sets `result`, most to itself: the condition (checked without calling the
-- function) lets only a changed reply through.
CREATE TRIGGER tickets_search_reply AFTER UPDATE OF subject, body, customer_id, result ON tickets
    FOR EACH ROW
    WHEN (OLD.subject IS DISTINCT FROM NEW.subject OR OLD.body IS DISTINCT FROM NEW.body
          OR OLD.customer_id IS DISTINCT FROM NEW.customer_id
          OR OLD.result->>'final_response' IS DISTINCT FROM NEW.result->>'final_response')
    EXECUTE FUNCTION index_ticket_words();
