-- The live event feed (GET /tickets/{id}/stream, /events/stream) reads events in seq order as
-- they commit. Commit order is not seq order, so the feed holds back what comes after a gap in
-- the sequence until every transaction that was in flight when it saw the gap has ended. That
-- is only sound if a transaction holds its transaction id before it takes a seq: then a seq
-- taken but not yet committed always belongs to a transaction the reader sees in flight. An
-- INSERT takes its seq (the column default) before it writes the row (which assigns the id),
-- so the default takes the id first. A standard SQL body is bound at creation: the sequence is
-- named by its OID, whatever the caller's search_path.
CREATE FUNCTION next_event_seq() RETURNS bigint
    LANGUAGE sql VOLATILE
BEGIN ATOMIC
    SELECT CASE WHEN pg_current_xact_id() IS NULL THEN NULL
                ELSE nextval('ticket_events_seq_seq'::regclass) END;
END;

ALTER TABLE ticket_events ALTER COLUMN seq SET DEFAULT next_event_seq();

-- One notice per transaction that wrote events, however many it wrote: a statement trigger,
-- and PostgreSQL folds identical notices of one transaction into one. The channel is the
-- schema's, so that several deployments can share a database.
CREATE FUNCTION notify_event_feed() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM pg_notify(TG_TABLE_SCHEMA || '.ticket_events', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER ticket_events_notify AFTER INSERT ON ticket_events
    FOR EACH STATEMENT EXECUTE FUNCTION notify_event_feed();
