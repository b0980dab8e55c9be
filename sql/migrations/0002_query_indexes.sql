-- Indexes for the questions people ask of Newsroom (the views in sql/views, pipeline/queries.py,
-- docs/queries.md), so they stay fast at a million articles. Never edit once landed: add 0003_*.sql.

-- "When an article was published" is, everywhere (views, queries, reports), the extracted date,
-- else the feed entry's date, else when Newsroom discovered it. Time windows filter on exactly
-- this expression, so it gets its own index; the views also expose its UTC day, indexed too so
-- `WHERE day >= ...` on a view is an index range scan rather than a full scan.
CREATE INDEX articles_when_idx
    ON articles ((coalesce(published_at, feed_published_at, discovered_at)));
CREATE INDEX articles_day_idx
    ON articles (((coalesce(published_at, feed_published_at, discovered_at) AT TIME ZONE 'UTC')::date));

-- Feed health counts each feed's articles over the last 7 days: (feed_id, first_seen_at) answers
-- that from the index alone, and serves every lookup by feed_id, so the feed_id-only index from
-- 0001 is redundant (one fewer index to maintain on every article a feed carries).
CREATE INDEX article_sources_feed_seen_idx ON article_sources (feed_id, first_seen_at);
DROP INDEX IF EXISTS article_sources_feed_idx;

-- Questions about a time window ("top entities this week", co-occurrence, a view's top_entities)
-- go from the window's articles to their mentions. The primary key leads with article_id too,
-- but needs the table for entity_id and label; this index answers from itself (index-only
-- scans), so such questions cost in proportion to the window rather than to the whole table.
CREATE INDEX article_entities_article_entity_idx ON article_entities (article_id, entity_id) INCLUDE (label);

-- Users name entities as they know them (`--entity putin`, `WHERE lower(name) = ...`).
CREATE INDEX entities_lower_name_idx ON entities (lower(name));

-- Already in 0001 and relied on here: GIN on articles.search (full-text), article_topics
-- (topic_id, article_id) (a topic's articles), article_entities (entity_id, article_id) (an
-- entity's articles), articles (cluster_id) (a story's copies), and article_topics' primary key
-- (article_id, topic_id) (an article's topics, index-only).
