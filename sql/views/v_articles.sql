-- v_articles: one row per article, with where it came from and what it is about.
--
-- Columns (names are stable; new columns are only ever appended):
--   id            articles.id
--   url           canonical URL, the article's natural key
--   title         headline (from the page, else from the feed entry)
--   author        byline, if any
--   outlet        the publishing site: the outlet name set on the first feed that carried the
--                 article (`outlet:` in the feeds file, `feeds add --outlet`), else the article's
--                 site (the registered domain of its URL, e.g. bbc.co.uk)
--   outlets       names of every feed that carried it, in the order they did (text[])
--   published_at  when it was published: the date found on the page, else the feed entry's date,
--                 else when Newsroom discovered it (dated_by says which): the generated column
--                 articles.published_effective, which every view, query and clustering uses
--                 (indexed, as is its UTC day; 0004_fold_and_publication_time.sql).
--   dated_by      where published_at came from: page | feed | url | discovered
--   day           published_at's date in UTC
--   language      language code detected at extraction (NULL before extraction)
--   word_count    words in the clean body
--   status        discovered | fetched | extracted | tagged | failed
--   cluster_id    near-duplicate cluster: the id of the story's first copy (NULL until clustered)
--   is_original   true for the earliest copy in its cluster (NULL until clustered)
--   topics        the article's topic slugs, best score first (text[]; empty when untagged)
--   top_entities  up to 10 canonical entity names, most mentioned first, ties by name (text[])
--   feed          name of the first feed that carried the article (NULL for a backfilled one)
--   site          the registered domain of the article's URL ('' when it has no host)
--   tag_skipped   why a tagged article has no entities or topics: no spaCy pipeline for its
--                 language (NEWSROOM_SPACY_MODELS), or its language is unknown; NULL otherwise
--
-- outlets, topics and top_entities are computed per row: cheap for the rows you select, so
-- filter (by id, published_at, day, cluster_id, ...) before asking for many rows.
CREATE OR REPLACE VIEW v_articles AS
SELECT a.id,
       a.url,
       a.title,
       a.author,
       coalesce(f.outlet, nullif(a.site, ''), f.name) AS outlet,
       ARRAY(SELECT sf.name
               FROM article_sources s JOIN feeds sf ON sf.id = s.feed_id
              WHERE s.article_id = a.id
              ORDER BY s.first_seen_at, s.feed_id) AS outlets,
       a.published_effective AS published_at,
       CASE WHEN a.published_at IS NOT NULL THEN coalesce(a.published_source, 'page')
            WHEN a.feed_published_at IS NOT NULL THEN 'feed'
            ELSE 'discovered' END AS dated_by,
       (a.published_effective AT TIME ZONE 'UTC')::date AS day,
       a.language,
       a.word_count,
       a.status,
       a.cluster_id,
       a.is_original,
       ARRAY(SELECT t.slug
               FROM article_topics at JOIN topics t ON t.id = at.topic_id
              WHERE at.article_id = a.id
              ORDER BY at.score DESC, t.slug) AS topics,
       ARRAY(SELECT e.name
               FROM article_entities ae JOIN entities e ON e.id = ae.entity_id
              WHERE ae.article_id = a.id
              GROUP BY e.id, e.name
              ORDER BY count(*) DESC, e.name
              LIMIT 10) AS top_entities,
       f.name AS feed,
       a.site,
       a.tag_skipped
  FROM articles a
  LEFT JOIN feeds f ON f.id = a.first_feed_id;
