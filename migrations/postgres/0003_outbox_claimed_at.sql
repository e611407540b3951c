-- When the relay last claimed a row for publishing. A row claimed but not yet marked sent is
-- in flight (its message may already be delivered), while an unclaimed row whose
-- available_at lies ahead is a delayed retry not yet due: claims tell the two apart.
ALTER TABLE outbox ADD COLUMN claimed_at timestamptz;
