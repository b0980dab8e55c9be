-- v_entity_mentions: one row per entity per article that mentions it.
--
-- Columns:
--   entity_id     entities.id
--   entity        canonical name ("Recep Tayyip Erdoğan" however the article spelled it)
--   label         entity label: PERSON, ORG, GPE, LOC, NORP, FAC, EVENT, WEAPON, ... (as tagged on the
--                 mentions, article_entities.label: the tagger gives all of an entity's mentions
--                 its one label; read from the mentions because their statistics let the planner
--                 see that, say, WEAPON mentions are common, and pick a fast plan)
--   wikidata_id   Wikidata item id (Q...), where known
--   article_id    articles.id (join v_articles on id for title, outlet, topics)
--   published_at  the article's publication time (articles.published_effective, as v_articles.published_at)
--   day           its UTC date
--   mentions      how many times the article mentions the entity
--   surfaces      the distinct spellings it used (text[])
--   country       for a place: its country, ISO 3166-1 alpha-2 (a country: its own code)
--   geonames_id   for a place: its GeoNames id
--   iso_code      for a country or province: its ISO 3166-1 or 3166-2 code
--   place_kind    country, region, city or continent
CREATE OR REPLACE VIEW v_entity_mentions AS
SELECT e.id AS entity_id,
       e.name AS entity,
       ae.label,
       e.wikidata_id,
       ae.article_id,
       a.published_effective AS published_at,
       (a.published_effective AT TIME ZONE 'UTC')::date AS day,
       count(*) AS mentions,
       array_agg(DISTINCT ae.surface ORDER BY ae.surface) AS surfaces,
       e.country,
       e.geonames_id,
       e.iso_code,
       e.place_kind
  FROM article_entities ae
  JOIN entities e ON e.id = ae.entity_id
  JOIN articles a ON a.id = ae.article_id
 -- Grouping by every output column lets filters on entity, label or day reach the scans.
 GROUP BY e.id, e.name, ae.label, e.wikidata_id, ae.article_id, 6, 7, e.country, e.geonames_id, e.iso_code, e.place_kind;
