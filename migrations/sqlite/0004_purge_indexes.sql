-- The periodic purge deletes expired sessions and idempotency keys by age; without these it
-- would scan both tables whole every time.
CREATE INDEX sessions_expires_at ON sessions (expires_at_us);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at_us);
