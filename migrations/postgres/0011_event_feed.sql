-- The live event feed (GET /tickets/{id}/stream, /events/stream) reads events in seq order as
-- they commit, woken by a notice: one per transaction that wrote events, however many it
-- wrote (a statement trigger, and PostgreSQL folds identical notices of one transaction into
-- one). The channel is the schema's, so that several deployments can share a database.
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
