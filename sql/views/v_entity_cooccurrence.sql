-- Entities that appear in the same articles: a view by day, and a function over a time window.
--
-- v_entity_cooccurrence: one row per ordered pair of distinct entities per UTC day, counting the
-- articles of that day that mention both. Every pair appears twice, once in each order, so
-- "what co-occurs with X" is simply `WHERE entity = 'X'`; to list each pair once, add
-- `AND entity_id < other_id`. Apply a time window with `day` and sum `articles` over it:
--     SELECT other, sum(articles) FROM v_entity_cooccurrence
--      WHERE entity = 'Idlib' AND day >= (now() AT TIME ZONE 'UTC')::date - 30
--      GROUP BY other ORDER BY 2 DESC;
--   entity_id    entities.id of the first entity
--   entity       its canonical name
--   label        its label (PERSON, GPE, WEAPON, ...; as on its mentions, like v_entity_mentions.label)
--   other_id     entities.id of the entity it appears with
--   other        that entity's canonical name
--   other_label  that entity's label
--   day          UTC date the articles were published (v_articles.day)
--   articles     articles of that day mentioning both
-- Filter on entity/entity_id (and day): unfiltered, this is every pair of every article.
CREATE OR REPLACE VIEW v_entity_cooccurrence AS
SELECT e1.id AS entity_id,
       e1.name AS entity,
       ae1.label,
       e2.id AS other_id,
       e2.name AS other,
       ae2.label AS other_label,
       (a.published_effective AT TIME ZONE 'UTC')::date AS day,
       count(DISTINCT ae1.article_id) AS articles
  -- A join of mentions, not of DISTINCT (article, entity) subqueries: filters on entity and day
  -- reach the indexes through plain joins, where a DISTINCT subquery would be computed whole.
  FROM article_entities ae1
  JOIN article_entities ae2 ON ae2.article_id = ae1.article_id AND ae2.entity_id <> ae1.entity_id
  JOIN articles a ON a.id = ae1.article_id
  JOIN entities e1 ON e1.id = ae1.entity_id
  JOIN entities e2 ON e2.id = ae2.entity_id
 GROUP BY e1.id, e1.name, ae1.label, e2.id, e2.name, ae2.label, 7;

-- entity_cooccurrence(since, until): every unordered pair of entities mentioned together in
-- articles published in [since, until) (NULL = unbounded; same published_at as v_articles),
-- each pair once with entity_a_id < entity_b_id. For the most frequent pairs of a period:
--     SELECT * FROM entity_cooccurrence(now() - interval '7 days') ORDER BY articles DESC LIMIT 20;
--   entity_a_id, entity_a, label_a   the pair's first entity (lower id)
--   entity_b_id, entity_b, label_b   the second
--   articles                         articles in the window mentioning both
--   first_seen, last_seen            earliest and latest such article's published_at
CREATE OR REPLACE FUNCTION entity_cooccurrence(since timestamptz DEFAULT NULL, until timestamptz DEFAULT NULL)
RETURNS TABLE (entity_a_id bigint, entity_a text, label_a text,
               entity_b_id bigint, entity_b text, label_b text,
               articles bigint, first_seen timestamptz, last_seen timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    WITH w AS (  -- articles in the window: one index range scan, unbounded ends as infinities
        SELECT a.id, a.published_effective AS t
          FROM articles a
         WHERE a.published_effective
                   >= coalesce(since, '-infinity'::timestamptz)
           AND a.published_effective
                   < coalesce(until, 'infinity'::timestamptz)),
    m AS (SELECT DISTINCT ae.article_id, ae.entity_id, w.t
            FROM w JOIN article_entities ae ON ae.article_id = w.id)
    SELECT e1.id, e1.name, e1.label, e2.id, e2.name, e2.label,
           count(*), min(m1.t), max(m1.t)
      FROM m m1
      JOIN m m2 ON m2.article_id = m1.article_id AND m2.entity_id > m1.entity_id
      JOIN entities e1 ON e1.id = m1.entity_id
      JOIN entities e2 ON e2.id = m2.entity_id
     GROUP BY e1.id, e2.id
$$;
