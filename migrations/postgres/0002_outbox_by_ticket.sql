-- A ticket's latest outbox row (the request that last woke it) is looked up on every claim,
-- release and sweep; without this index each lookup walked the outbox backwards from its
-- newest row, a cost that grew with the table (found profiling the durable benchmark).
CREATE INDEX outbox_ticket_idx ON outbox (ticket_id, id);
