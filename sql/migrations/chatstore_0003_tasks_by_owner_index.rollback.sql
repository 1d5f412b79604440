-- Drops the tasks index (the seed's indexes are not re-created: the baseline never had them).
-- transactional: false
-- It takes only a SHARE UPDATE EXCLUSIVE lock, and then waits for older transactions
-- by design: a lock_timeout would abort it half-built, so none is set.
-- squawk-ignore-file ban-concurrent-index-creation-in-transaction,require-lock-timeout

DROP INDEX CONCURRENTLY IF EXISTS tasks_user_id_completed_idx;
