-- v_topic_daily: tagged articles per topic, per day, per outlet.
--
-- Columns:
--   day         UTC date the articles were published (v_articles.day)
--   topic       topic slug
--   topic_name  the topic's display name
--   feed_id     the first feed that carried each article (so every article is counted under
--               exactly one feed and outlet, and summing over rows gives the topic's total)
--   outlet      the publishing site, as v_articles.outlet: the feed's outlet name if set, else
--               the article's site (its registered domain)
--   articles    tagged articles: every copy, syndicated ones included
--   originals   of those, the earliest copy of their story (is_original true, or not yet clustered)
--
-- Days without articles have no row. Filter on day and topic: both reach the indexes.
CREATE OR REPLACE VIEW v_topic_daily AS
SELECT (a.published_effective AT TIME ZONE 'UTC')::date AS day,
       t.slug AS topic,
       t.name AS topic_name,
       f.id AS feed_id,
       coalesce(f.outlet, nullif(a.site, ''), f.name) AS outlet,
       count(*) AS articles,
       count(*) FILTER (WHERE a.is_original IS NOT FALSE) AS originals
  FROM article_topics at
  JOIN topics t ON t.id = at.topic_id
  JOIN articles a ON a.id = at.article_id
  LEFT JOIN feeds f ON f.id = a.first_feed_id
 -- Grouping by every output column (not just the keys) lets filters on them reach the scans.
 GROUP BY 1, t.id, t.slug, t.name, f.id, 5;
