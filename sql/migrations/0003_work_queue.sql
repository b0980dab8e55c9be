-- The work queue (pipeline/workqueue.py): claims carry a token that every write checks (a late
-- write from a worker whose lease ran out is dropped, never overwrites newer work); feeds get a
-- real lease instead of a pushed next_poll_at, so a crashed poll's feeds come back quickly and
-- "leased by a run that is gone" can be seen; backlog work (retag, backfill) waits behind live
-- work. Never edit once landed: add 0004_*.sql.

ALTER TABLE articles
    ADD COLUMN claim_token uuid,                   -- set by a claim; writes check it, then clear it
    ADD COLUMN claimed_by  text,                   -- who holds the claim (run / stage / worker)
    ADD COLUMN priority    smallint NOT NULL DEFAULT 0
                           CHECK (priority IN (0, 1));  -- 0 live work, 1 backlog (retag, backfill)

ALTER TABLE feeds
    ADD COLUMN claim_token   uuid,
    ADD COLUMN claimed_by    text,
    ADD COLUMN claimed_until timestamptz;

-- Claims take live work first, oldest first (id breaks ties: a retag gives thousands of rows
-- the same next_attempt_at, and without it a claim sorts the whole backlog).
CREATE INDEX articles_queue_idx ON articles (status, priority, next_attempt_at, id)
    WHERE status IN ('discovered', 'fetched', 'extracted');
-- Each claim first fails the articles that used up their attempts: a short range scan.
CREATE INDEX articles_attempts_idx ON articles (status, attempts)
    WHERE status IN ('discovered', 'fetched', 'extracted');
DROP INDEX IF EXISTS articles_work_idx;
-- Heartbeats renew, and stale-claim checks look up, by token.
CREATE INDEX articles_claim_idx ON articles (claim_token) WHERE claim_token IS NOT NULL;
CREATE INDEX feeds_claim_idx ON feeds (claim_token) WHERE claim_token IS NOT NULL;
