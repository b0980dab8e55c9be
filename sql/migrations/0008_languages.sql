-- Languages: each article is indexed for search with its own language's stemming, and an
-- article tagged without a model for its language says why.
-- Never edit once landed: add a new migration.

-- 1. The text-search configuration for a language code (articles.language: "en", "fr", "pt"...):
--    PostgreSQL's built-in Snowball configurations, `simple` (no stemming, no stop words) for
--    every other language and for an unknown one (NULL). IMMUTABLE: the `search` column is
--    generated from it, so a changed mapping only reaches stored rows when they are rewritten
--    (a new migration that regenerates the column, as this one does).
CREATE OR REPLACE FUNCTION newsroom_ts_config(language text) RETURNS regconfig
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE lower($1)
        WHEN 'en' THEN 'english'::regconfig WHEN 'fr' THEN 'french'::regconfig WHEN 'de' THEN 'german'::regconfig
        WHEN 'es' THEN 'spanish'::regconfig WHEN 'it' THEN 'italian'::regconfig WHEN 'pt' THEN 'portuguese'::regconfig
        WHEN 'nl' THEN 'dutch'::regconfig WHEN 'ru' THEN 'russian'::regconfig WHEN 'tr' THEN 'turkish'::regconfig
        WHEN 'ar' THEN 'arabic'::regconfig WHEN 'sv' THEN 'swedish'::regconfig WHEN 'da' THEN 'danish'::regconfig
        WHEN 'no' THEN 'norwegian'::regconfig WHEN 'nb' THEN 'norwegian'::regconfig WHEN 'nn' THEN 'norwegian'::regconfig
        WHEN 'fi' THEN 'finnish'::regconfig WHEN 'hu' THEN 'hungarian'::regconfig WHEN 'ro' THEN 'romanian'::regconfig
        WHEN 'el' THEN 'greek'::regconfig WHEN 'id' THEN 'indonesian'::regconfig WHEN 'ga' THEN 'irish'::regconfig
        WHEN 'lt' THEN 'lithuanian'::regconfig WHEN 'ne' THEN 'nepali'::regconfig WHEN 'ta' THEN 'tamil'::regconfig
        WHEN 'hy' THEN 'armenian'::regconfig WHEN 'eu' THEN 'basque'::regconfig WHEN 'ca' THEN 'catalan'::regconfig
        WHEN 'hi' THEN 'hindi'::regconfig WHEN 'sr' THEN 'serbian'::regconfig WHEN 'yi' THEN 'yiddish'::regconfig
        ELSE 'simple'::regconfig END $$;

-- 2. One search across languages. A tsquery is stemmed by one configuration, so the words a user
--    types become the query of every configuration above, OR-ed (identical ones kept once: "S-400"
--    is the same in most): one constant per search, so `search @@ newsroom_tsquery(...)` uses the
--    GIN index, where a per-row websearch_to_tsquery(newsroom_ts_config(a.language), ...) alone
--    would read every row. It finds a superset: an article matches the query of its own
--    language, one of the OR-ed branches. Searches then keep only the rows that match their own
--    language's query (pipeline/queries.py: a query with an exclusion is checked again per row,
--    as "-russia" is stemmed differently per language and another language's branch would let an
--    excluded article through; otherwise a row whose own language's query ranks it 0 is dropped).
--    With a language, only that language's query. newsroom_ts_configs() lists every
--    configuration newsroom_ts_config() gives.
CREATE OR REPLACE FUNCTION newsroom_ts_configs() RETURNS regconfig[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT ARRAY['english', 'simple', 'french', 'german', 'spanish', 'italian', 'portuguese', 'dutch',
                       'russian', 'turkish', 'arabic', 'swedish', 'danish', 'norwegian', 'finnish', 'hungarian',
                       'romanian', 'greek', 'indonesian', 'irish', 'lithuanian', 'nepali', 'tamil', 'armenian',
                       'basque', 'catalan', 'hindi', 'serbian', 'yiddish']::regconfig[] $$;

CREATE OR REPLACE AGGREGATE newsroom_tsquery_or(tsquery) (SFUNC = tsquery_or, STYPE = tsquery);

CREATE OR REPLACE FUNCTION newsroom_tsquery(query text, language text DEFAULT NULL) RETURNS tsquery
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN $2 IS NOT NULL
                      THEN websearch_to_tsquery(newsroom_ts_config($2), newsroom_fold($1))
                      ELSE (SELECT newsroom_tsquery_or(DISTINCT q)
                              FROM (SELECT websearch_to_tsquery(c, newsroom_fold($1)) AS q
                                      FROM unnest(newsroom_ts_configs()) c) s
                             WHERE numnode(q) > 0) END $$;

-- 3. Articles tagged without entities and topics because no spaCy pipeline is configured for
--    their language (or it is unknown): the reason, NULL for a normally tagged article.
--    `newsroom retag --skipped` re-tags them once a model is configured.
-- 4. `search` regenerated with each article's own configuration (the fold and the weights as in
--    0004: title A, the first 300,000 characters of the body B). One rewrite of `articles`.
DROP INDEX IF EXISTS articles_search_idx;
ALTER TABLE articles
    ADD COLUMN tag_skipped text,
    DROP COLUMN search,
    ADD COLUMN search tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector(newsroom_ts_config(language), newsroom_fold(coalesce(title, ''))), 'A') ||
        setweight(to_tsvector(newsroom_ts_config(language), newsroom_fold(left(coalesce(body, ''), 300000))), 'B')
    ) STORED;
CREATE INDEX articles_search_idx ON articles USING gin (search);
