-- Feeds are data: the database is the source of truth for the feed list. Never edit once
-- landed: add 0007_*.sql (or the next free number).

-- 1. Who manages each feed, and why a feed is not polled.
--    managed_by: 'file' = listed in the feeds file (NEWSROOM_FEEDS), kept in sync with it;
--                'user' = added with `newsroom feeds add` or `feeds import`: the file's sync never
--                touches it. Every feed so far came from the file.
--    disabled_reason (NULL exactly when the feed is enabled): removed (by `feeds remove`), paused
--    (`feeds pause`), gone (the server said 410 Gone), unlisted (dropped from the feeds file),
--    moved (it moved to a URL another feed already has). disabled_detail says more, for people.
ALTER TABLE feeds
    ADD COLUMN managed_by      text NOT NULL DEFAULT 'file' CHECK (managed_by IN ('file', 'user')),
    ADD COLUMN disabled_reason text CHECK (disabled_reason IN ('removed', 'paused', 'gone', 'unlisted', 'moved')),
    ADD COLUMN disabled_at     timestamptz,
    ADD COLUMN disabled_detail text,
    -- the publishing site's name, when the user sets one; else an article's outlet is its
    -- site (the registered domain of its URL)
    ADD COLUMN outlet          text,
    -- a permanent redirect (301/308) from the feed's URL, and on how many polls in a row it was
    -- seen; after NEWSROOM_FEED_MOVE_AFTER of them the feed moves there
    ADD COLUMN redirect_url    text,
    ADD COLUMN redirect_polls  integer NOT NULL DEFAULT 0 CHECK (redirect_polls >= 0);

UPDATE feeds SET disabled_reason = 'unlisted', disabled_at = updated_at,
                 disabled_detail = 'no longer in the feeds file'
 WHERE NOT enabled;
ALTER TABLE feeds ADD CONSTRAINT feeds_enabled_reason_check
    CHECK (enabled = (disabled_reason IS NULL));

-- 2. The URLs a feed had before it moved (a permanent redirect, or the user changed it).
--    The feeds file may still list an old URL: the sync finds the feed through here.
CREATE TABLE feed_url_history (
    feed_id     bigint NOT NULL REFERENCES feeds (id) ON DELETE CASCADE,
    url         text NOT NULL UNIQUE,                 -- an old URL belongs to one feed
    new_url     text NOT NULL,
    changed_at  timestamptz NOT NULL DEFAULT now(),
    reason      text NOT NULL,
    PRIMARY KEY (feed_id, url)
);

-- 3. Each article's site: the registered domain of its URL ("bbc.co.uk" for
--    https://www.bbc.co.uk/news/...), set from Python (the public suffix list is not in SQL);
--    articles stored before this are filled in by `newsroom db migrate`, a batch at a time,
--    through the small index below.
ALTER TABLE articles ADD COLUMN site text;
CREATE INDEX articles_site_idx ON articles (site);
CREATE INDEX articles_site_missing_idx ON articles (id) WHERE site IS NULL;
-- --tag and --feed filters go from a feed to its articles
CREATE INDEX feeds_tags_idx ON feeds USING gin (tags);
