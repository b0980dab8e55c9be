-- Search speed: keep each article's search vector in its row instead of in TOAST.
-- Never edit once landed: add a new migration.
--
-- A search reads the `search` tsvector of every candidate twice (the match, then ts_rank_cd),
-- up to queries.MAX_CANDIDATES (10,000) rows for a common word. A news article's vector is a
-- couple of kilobytes and does not compress, so with the default storage (EXTENDED) PostgreSQL
-- moved it out of line: each read was a TOAST index lookup plus a heap fetch, most of a
-- search's time at 1,000,000 articles (bench/search_bench.py, bench/results/search.json).
-- STORAGE MAIN keeps it in the row (compressed when that helps, out of line only when a row
-- would not fit in a page); the body, read only for the 20 snippets of a result page, is moved
-- out of line instead. Results are unchanged: same rows, order and snippets.
ALTER TABLE articles ALTER COLUMN search SET STORAGE MAIN;

-- Storage settings apply to rows as they are written, so rewrite the table once: CLUSTER
-- re-stores every row under the new setting (no text is re-parsed: the vectors are copied) and
-- rebuilds the indexes; ordering by publication time keeps the newest articles, the ones a
-- search walks first, on neighbouring pages. Takes an exclusive lock on `articles` while it runs
-- (about ten minutes at 1,000,000 articles on 2 shared cores; seconds on a small archive).
CLUSTER articles USING articles_when_idx;
ANALYZE articles;
