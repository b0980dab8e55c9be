-- One effective publication time, one accent fold, entity keys that survive a relabel.
-- Never edit once landed: add 0005_*.sql.

-- 1. newsroom_fold, generated from pipeline/text.py (`python -m pipeline.text`): the same rule
--    as Python's fold(s, lower=False), so an entity key, a topic term and a full-text search agree
--    ("Sorensen" finds "Sørensen", "Lodz" finds "Łódź", "Strasse" finds "Straße").
CREATE OR REPLACE FUNCTION newsroom_fold(text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT translate(replace(replace(replace(replace(replace(replace(replace(replace(regexp_replace(normalize(translate(replace(replace(replace(replace(replace(replace(replace(replace($1, 'ß', 'ss'), 'ẞ', 'SS'), 'æ', 'ae'), 'Æ', 'AE'), 'œ', 'oe'), 'Œ', 'OE'), 'þ', 'th'), 'Þ', 'TH'), 'ıłŁøØđĐħĦðÐŧŦəƏŋŊ‘’ʼʿʾʻʹ′`´“”‐‑‒–—− ', 'ilLoOdDhHdDtTaAnN''''''''''''''''''''""------ '), NFKD), '[\u0300-\u036f\u0483-\u0489\u0591-\u05bd\u05bf-\u05bf\u05c1-\u05c2\u05c4-\u05c5\u05c7-\u05c7\u0610-\u061a\u064b-\u065f\u0670-\u0670\u06d6-\u06dc\u06df-\u06e4\u06e7-\u06e8\u06ea-\u06ed\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+', '', 'g'), 'ß', 'ss'), 'ẞ', 'SS'), 'æ', 'ae'), 'Æ', 'AE'), 'œ', 'oe'), 'Œ', 'OE'), 'þ', 'th'), 'Þ', 'TH'), 'ıłŁøØđĐħĦðÐŧŦəƏŋŊ‘’ʼʿʾʻʹ′`´“”‐‑‒–—− ', 'ilLoOdDhHdDtTaAnN''''''''''''''''''''""------ ') $$;

-- 2. Articles are rewritten once, for both changes at the same time:
--    `published_effective`, "when it was published" everywhere (the page's date, else the feed
--    entry's, else when Newsroom discovered it): clustering, queries, views and indexes use it;
--    `search` regenerated with the new fold (a generated column's values only change on a rewrite).
DROP INDEX IF EXISTS articles_when_idx;
DROP INDEX IF EXISTS articles_day_idx;
ALTER TABLE articles
    DROP COLUMN search,
    ADD COLUMN published_effective timestamptz NOT NULL
        GENERATED ALWAYS AS (coalesce(published_at, feed_published_at, discovered_at)) STORED,
    ADD COLUMN search tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english'::regconfig, newsroom_fold(coalesce(title, ''))), 'A') ||
        setweight(to_tsvector('english'::regconfig, newsroom_fold(left(coalesce(body, ''), 300000))), 'B')
    ) STORED;
CREATE INDEX articles_search_idx ON articles USING gin (search);
CREATE INDEX articles_when_idx ON articles (published_effective);
CREATE INDEX articles_day_idx ON articles (((published_effective AT TIME ZONE 'UTC')::date));

-- 3. The original of each cluster is its earliest copy by that time (clustering used the page's
--    date or the discovery time, so a copy whose date came from its feed could lose to a later one).
UPDATE articles a SET is_original = (a.id = f.first_id)
  FROM (SELECT DISTINCT ON (cluster_id) cluster_id, id AS first_id
          FROM articles WHERE cluster_id IS NOT NULL
         ORDER BY cluster_id, published_effective, id) f
 WHERE a.cluster_id = f.cluster_id AND a.is_original IS DISTINCT FROM (a.id = f.first_id);

-- 4. Entities without a Wikidata id are keyed by their folded name alone (pipeline/text.py
--    entity_key): "Sørensen" and "Sorensen", or the same place labelled GPE in one article and
--    LOC in another, become one entity. Rows that now share a key merge into the oldest: its
--    mentions are re-pointed, names and aliases pooled, the label is the one most mentions carry.
--    The key in SQL: pipeline/text.py entity_key (casefold: lower() plus the final sigma;
--    str.split's whitespace), checked against Python by tests/integration/test_fold.py.
CREATE FUNCTION newsroom_entity_key(name text, wikidata_id text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT coalesce($2, 'name:' || coalesce(
              nullif(btrim(regexp_replace(translate(lower(newsroom_fold($1)), 'ς', 'σ'), '[\s\u0085\u001c-\u001f\u1680\u2000-\u200a\u2028\u2029\u205f\u3000]+', ' ', 'g')), ''),
              btrim(regexp_replace($1, '[\s\u0085\u001c-\u001f\u1680\u2000-\u200a\u2028\u2029\u205f\u3000]+', ' ', 'g')))) $$;

CREATE TEMP TABLE entity_rekey ON COMMIT DROP AS
SELECT id, new_key, min(id) OVER (PARTITION BY new_key) AS keep
  FROM (SELECT id, newsroom_entity_key(name, wikidata_id) AS new_key FROM entities) k;
CREATE INDEX ON entity_rekey (keep);
CREATE INDEX ON entity_rekey (id);
ANALYZE entity_rekey;

-- One grouped pass over the groups that merge (a correlated subquery per group was quadratic).
UPDATE entities e SET aliases = m.aliases, updated_at = now()
  FROM (SELECT r.keep, array_agg(DISTINCT x ORDER BY x) AS aliases
          FROM entity_rekey r JOIN entities o ON o.id = r.id, unnest(o.aliases || o.name) x
         WHERE r.keep IN (SELECT keep FROM entity_rekey GROUP BY keep HAVING count(*) > 1)
         GROUP BY r.keep) m
 WHERE e.id = m.keep;
UPDATE entities e SET aliases = array_remove(e.aliases, e.name)
  FROM entity_rekey r WHERE r.id = e.id AND r.keep = e.id AND e.name = ANY(e.aliases);

UPDATE article_entities ae SET entity_id = r.keep
  FROM entity_rekey r WHERE ae.entity_id = r.id AND r.id <> r.keep;
DELETE FROM entities e USING entity_rekey r WHERE e.id = r.id AND r.id <> r.keep;
UPDATE entities e SET key = r.new_key FROM entity_rekey r WHERE e.id = r.id AND e.key <> r.new_key;

UPDATE entities e SET label = v.label, updated_at = now()
  FROM (SELECT DISTINCT ON (entity_id) entity_id, label
          FROM article_entities
         WHERE entity_id IN (SELECT keep FROM entity_rekey GROUP BY keep HAVING count(*) > 1)
         GROUP BY entity_id, label
         ORDER BY entity_id, count(*) DESC, label) v
 WHERE e.id = v.entity_id AND e.wikidata_id IS NULL AND e.label <> v.label;

COMMENT ON COLUMN entities.key IS 'Wikidata id, else ''name:'' and the folded name (pipeline/text.py entity_key)';

-- 5. Error classes are pipeline/states.py's ErrorClass, checked like statuses and outcomes: a new
--    class comes with a migration (replacing this function), so a typo cannot invent one.
--    NOT VALID: rows already written are left as they are; every new row is checked.
CREATE FUNCTION newsroom_error_classes() RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT ARRAY[
    'dns', 'connect', 'timeout', 'tls', 'tls_certificate', 'protocol', 'too_many_redirects',
    'http_4xx', 'http_410_gone', 'http_429', 'http_5xx', 'http_unexpected', 'invalid_url',
    'blocked_address', 'robots_disallowed', 'robots_unavailable', 'too_large', 'empty_body',
    'not_html', 'bad_encoding', 'not_a_feed', 'parse_error', 'entity_expansion',
    'empty_html', 'no_body', 'too_short', 'paywall', 'not_article', 'internal_error',
    'gave_up']::text[] $$;
ALTER TABLE feed_polls ADD CONSTRAINT feed_polls_error_class_check
    CHECK (error_class = ANY (newsroom_error_classes())) NOT VALID;
ALTER TABLE feeds ADD CONSTRAINT feeds_last_error_class_check
    CHECK (last_error_class = ANY (newsroom_error_classes())) NOT VALID;
