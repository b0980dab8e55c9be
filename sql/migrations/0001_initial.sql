-- Newsroom's initial schema. Natural keys and unique constraints make duplicates impossible;
-- every writer upserts against them. Never edit this file once it has landed: add 0002_*.sql.

-- Accents folded for full-text search, so "Erdogan" finds "Erdoğan" and the other way round.
-- Immutable (a fixed translate table), so the generated search column can use it; queries fold
-- their input with it too.
CREATE FUNCTION newsroom_fold(text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT translate($1,
        'ğĞıİşŞçÇöÖüÜâÂäÄàÀáÁãÃåÅéÉèÈêÊëËíÍìÌîÎïÏóÓòÒôÔõÕúÚùÙûÛñÑýÝÿčČćĆžŽšŠřŘňŇďĎťŤłŁńŃśŚźŹżŻęĘąĄőŐűŰěĚůŮāĀēĒīĪōŌūŪ',
        'gGiIsScCoOuUaAaAaAaAaAaAeEeEeEeEiIiIiIiIoOoOoOoOuUuUuUnNyYycCcCzZsSrRnNdDtTlLnNsSzZzZeEaAoOuUeEuUaAeEiIoOuU') $$;

CREATE TABLE feeds (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    url                   text NOT NULL UNIQUE,
    name                  text NOT NULL,
    tags                  text[] NOT NULL DEFAULT '{}',
    poll_interval_s       integer CHECK (poll_interval_s IS NULL OR poll_interval_s >= 60),
    enabled               boolean NOT NULL DEFAULT true,
    -- conditional GET validators, sent back on the next poll
    etag                  text,
    last_modified         text,
    body_hash             text,
    last_polled_at        timestamptz,
    last_success_at       timestamptz,
    last_new_article_at   timestamptz,
    next_poll_at          timestamptz NOT NULL DEFAULT now(),
    consecutive_failures  integer NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    last_status           text CHECK (last_status IN ('ok', 'not_modified', 'error')),
    last_http_status      integer,
    last_error_class      text,
    last_error            text,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX feeds_due_idx ON feeds (next_poll_at) WHERE enabled;

CREATE TABLE ingest_runs (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_key           text NOT NULL UNIQUE,          -- Airflow run_id, or a CLI-made key
    trigger           text NOT NULL,                 -- cli | airflow | manual | ...
    status            text NOT NULL DEFAULT 'running'
                      CHECK (status IN ('running', 'success', 'failed')),
    started_at        timestamptz NOT NULL DEFAULT now(),
    finished_at       timestamptz,
    feeds_polled      integer NOT NULL DEFAULT 0,
    feeds_ok          integer NOT NULL DEFAULT 0,
    feeds_failed      integer NOT NULL DEFAULT 0,
    articles_new      integer NOT NULL DEFAULT 0,
    pages_fetched     integer NOT NULL DEFAULT 0,
    pages_failed      integer NOT NULL DEFAULT 0,
    articles_extracted integer NOT NULL DEFAULT 0,
    articles_tagged   integer NOT NULL DEFAULT 0,
    articles_failed   integer NOT NULL DEFAULT 0,
    durations         jsonb NOT NULL DEFAULT '{}',   -- seconds per stage
    errors            jsonb NOT NULL DEFAULT '[]',   -- [{stage, error_class, message}]
    details           jsonb NOT NULL DEFAULT '{}'
);

CREATE TABLE feed_polls (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    feed_id         bigint NOT NULL REFERENCES feeds (id) ON DELETE CASCADE,
    started_at      timestamptz NOT NULL,
    finished_at     timestamptz NOT NULL,
    outcome         text NOT NULL CHECK (outcome IN ('ok', 'not_modified', 'error')),
    http_status     integer,
    entries_seen    integer NOT NULL DEFAULT 0,
    entries_new     integer NOT NULL DEFAULT 0,
    error_class     text,
    error_message   text,
    transient       boolean,
    UNIQUE (feed_id, started_at)
);
CREATE INDEX feed_polls_started_idx ON feed_polls (started_at);

CREATE TABLE articles (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    url               text NOT NULL UNIQUE,          -- canonical URL: the natural key
    first_url         text NOT NULL,                 -- as the first feed gave it
    final_url         text,                          -- after redirects
    guid              text,                          -- feed-level id from the first feed
    first_feed_id     bigint REFERENCES feeds (id) ON DELETE SET NULL,
    title             text,
    author            text,
    summary           text,                          -- from the feed entry
    feed_published_at timestamptz,
    published_at      timestamptz,
    published_source  text CHECK (published_source IN ('page', 'feed', 'url')),
    language          text,
    body              text,
    word_count        integer CHECK (word_count IS NULL OR word_count >= 0),
    content_hash      text,
    minhash           bytea,                         -- near-duplicate signature (pipeline/dedup.py)
    minhash_bands     bigint[],                      -- its LSH band keys, for finding candidates
    cluster_id        bigint,                        -- id of the first-seen copy of the story
    is_original       boolean,                       -- the earliest copy in its cluster
    status            text NOT NULL DEFAULT 'discovered'
                      CHECK (status IN ('discovered', 'fetched', 'extracted', 'tagged', 'failed')),
    failed_stage      text CHECK (failed_stage IN ('fetch', 'extract', 'tag')),
    last_error        text,
    attempts          integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at   timestamptz NOT NULL DEFAULT now(),
    claimed_until     timestamptz,                   -- lease: a crashed worker's rows come back
    discovered_at     timestamptz NOT NULL DEFAULT now(),
    fetched_at        timestamptz,
    extracted_at      timestamptz,
    tagged_at         timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    pipeline_version  text NOT NULL,
    extractor_version text,
    nlp_version       text,
    rules_version     text,
    search            tsvector GENERATED ALWAYS AS (
                          setweight(to_tsvector('english'::regconfig, newsroom_fold(coalesce(title, ''))), 'A') ||
                          setweight(to_tsvector('english'::regconfig,
                                                newsroom_fold(left(coalesce(body, ''), 300000))), 'B')
                      ) STORED,
    CHECK (status <> 'failed' OR last_error IS NOT NULL)
);
CREATE INDEX articles_work_idx ON articles (status, next_attempt_at)
    WHERE status IN ('discovered', 'fetched', 'extracted');
CREATE INDEX articles_published_idx ON articles (published_at);
CREATE INDEX articles_discovered_idx ON articles (discovered_at);
CREATE INDEX articles_cluster_idx ON articles (cluster_id) WHERE cluster_id IS NOT NULL;
CREATE INDEX articles_minhash_bands_idx ON articles USING gin (minhash_bands);
CREATE INDEX articles_content_hash_idx ON articles (content_hash) WHERE content_hash IS NOT NULL;
CREATE INDEX articles_search_idx ON articles USING gin (search);

CREATE TABLE article_sources (
    article_id     bigint NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    feed_id        bigint NOT NULL REFERENCES feeds (id) ON DELETE CASCADE,
    guid           text,
    entry_url      text NOT NULL,
    first_seen_at  timestamptz NOT NULL DEFAULT now(),
    last_seen_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (article_id, feed_id)
);
CREATE INDEX article_sources_feed_idx ON article_sources (feed_id);
CREATE UNIQUE INDEX article_sources_guid_idx ON article_sources (feed_id, guid) WHERE guid IS NOT NULL;

CREATE TABLE raw_pages (
    article_id     bigint PRIMARY KEY REFERENCES articles (id) ON DELETE CASCADE,
    http_status    integer NOT NULL,
    final_url      text NOT NULL,
    content_type   text,
    charset        text,
    headers        jsonb NOT NULL DEFAULT '{}',
    fetched_at     timestamptz NOT NULL DEFAULT now(),
    size_bytes     integer NOT NULL CHECK (size_bytes >= 0),
    html_gz        bytea NOT NULL                  -- gzip of the decoded page as UTF-8
);

CREATE TABLE entities (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key            text NOT NULL UNIQUE,          -- label + folded canonical name
    name           text NOT NULL,
    label          text NOT NULL,
    wikidata_id    text UNIQUE CHECK (wikidata_id ~ '^Q[0-9]+$'),
    aliases        text[] NOT NULL DEFAULT '{}',
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX entities_label_idx ON entities (label);

CREATE TABLE article_entities (
    article_id     bigint NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    start_char     integer NOT NULL CHECK (start_char >= 0),
    end_char       integer NOT NULL,
    entity_id      bigint NOT NULL REFERENCES entities (id) ON DELETE CASCADE,
    surface        text NOT NULL,
    label          text NOT NULL,
    model_version  text NOT NULL,
    PRIMARY KEY (article_id, start_char, end_char),
    CHECK (end_char > start_char)
);
CREATE INDEX article_entities_entity_idx ON article_entities (entity_id, article_id);

CREATE TABLE topics (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug           text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]*$'),
    name           text NOT NULL,
    description    text NOT NULL DEFAULT '',
    rules_version  text NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE article_topics (
    article_id     bigint NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    topic_id       bigint NOT NULL REFERENCES topics (id) ON DELETE CASCADE,
    score          real NOT NULL,
    evidence       jsonb NOT NULL DEFAULT '{}',
    rules_version  text NOT NULL,
    tagged_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (article_id, topic_id)
);
CREATE INDEX article_topics_topic_idx ON article_topics (topic_id, article_id);
