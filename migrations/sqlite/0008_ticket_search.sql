-- Full-text search (FTS5) over a ticket's subject, body, customer and reply, as the PostgreSQL
-- migration 0010. Each ticket has a row in `ticket_search`, whose INTEGER PRIMARY KEY is the
-- FTS row's id: stable under VACUUM, unlike a table's implicit rowid.
CREATE TABLE ticket_search (
    id        INTEGER PRIMARY KEY,
    ticket_id TEXT    NOT NULL UNIQUE REFERENCES tickets (id) ON DELETE CASCADE
);
CREATE VIRTUAL TABLE tickets_fts USING fts5 (subject, body, customer_id, response, tokenize = 'porter unicode61');

INSERT INTO ticket_search (ticket_id) SELECT id FROM tickets ORDER BY created_at, id;
INSERT INTO tickets_fts (rowid, subject, body, customer_id, response)
SELECT s.id, t.subject, t.body, t.customer_id,
       coalesce(CASE WHEN json_valid(t.result) THEN json_extract(t.result, '$.final_response') END, '')
FROM ticket_search s JOIN tickets t ON t.id = s.ticket_id;

CREATE TRIGGER tickets_search_insert AFTER INSERT ON tickets BEGIN
    INSERT INTO ticket_search (ticket_id) VALUES (new.id);
    INSERT INTO tickets_fts (rowid, subject, body, customer_id, response)
    VALUES (last_insert_rowid(), new.subject, new.body, new.customer_id,
            coalesce(CASE WHEN json_valid(new.result) THEN json_extract(new.result, '$.final_response') END, ''));
END;

-- Only a reply that changed is indexed again (every transition sets `result`, most to itself).
CREATE TRIGGER tickets_search_reply AFTER UPDATE OF result ON tickets WHEN old.result IS NOT new.result BEGIN
    UPDATE tickets_fts
    SET response = coalesce(CASE WHEN json_valid(new.result) THEN json_extract(new.result, '$.final_response') END, '')
    WHERE rowid = (SELECT id FROM ticket_search WHERE ticket_id = new.id);
END;

CREATE TRIGGER tickets_search_delete BEFORE DELETE ON tickets BEGIN
    DELETE FROM tickets_fts WHERE rowid = (SELECT id FROM ticket_search WHERE ticket_id = old.id);
END;

CREATE INDEX tickets_updated_idx ON tickets (updated_at DESC, id);
