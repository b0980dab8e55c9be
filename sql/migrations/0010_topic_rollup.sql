-- A topic-per-day rollup, kept exact by the database itself (pipeline/store/rollup.py compacts it,
-- pipeline/queries.py reads it: topic_timeline and topic_volumes without scanning a year of articles).
-- Never edit once landed: add 0011_*.sql.
--
-- The counted fact, as topic_timeline and topic_volumes count it: per topic and UTC day of
-- articles.published_effective, `articles` = its article_topics rows, `originals` = those whose
-- article has is_original IS NOT FALSE (the earliest copy of its story, or not clustered yet).
--
-- The true count of a (topic, day) is its topic_day_counts row plus the sum of its
-- topic_day_deltas rows. Triggers only ever INSERT deltas (no unique key: concurrent tag workers
-- never wait on each other's row locks and cannot deadlock on them); compaction
-- (store.rollup.compact, one at a time under an advisory lock) folds the deltas into the counts.
-- Correctness never depends on compaction having run.
--
-- What keeps it exact, whoever writes (the stages, retag, re-extraction, clustering, a user's SQL):
-- * article_topics INSERT / DELETE: statement triggers with transition tables, one aggregated
--   delta row per (topic, day); they read the article's day and is_original FOR SHARE, so an
--   article updated at the same time is counted by exactly one side (the UPDATE waits for the
--   lock, or the trigger waits for the UPDATE and reads the new row);
-- * article_topics UPDATE of article_id or topic_id (only by hand): a row trigger moves the row;
-- * articles UPDATE changing published_effective or is_original: a row trigger (WHEN ... so every
--   other update costs nothing) moves the article's topics from the old (day, original) to the new;
-- * articles DELETE: a BEFORE row trigger deletes the article's article_topics itself, while the
--   article still exists, so the article_topics trigger subtracts them (the ON DELETE CASCADE that
--   follows finds nothing left; a cascade alone would run after the article is gone and could not
--   tell which day to subtract from);
-- * topics DELETE: counts go by ON DELETE CASCADE, the topic's deltas by a statement trigger, and
--   the cascade's delete of its article_topics appends none (it fires after or before the
--   statement trigger, depending on the order PostgreSQL queues them: both orders are covered);
-- * TRUNCATE of article_topics, articles or topics: both tables are emptied.
-- (Statement triggers with transition tables on `articles` itself are avoided on purpose: they
-- would copy every updated row, bodies included.)
-- Not covered: ONE statement that both moves an article's date (or is_original) and changes its
-- article_topics (a writable CTE doing both): both triggers fire after it and the move is
-- counted twice. Newsroom never writes so; `store.rollup.differences` finds such a drift.

CREATE TABLE topic_day_counts (
    topic_id   bigint NOT NULL REFERENCES topics (id) ON DELETE CASCADE,
    day        date NOT NULL,
    articles   bigint NOT NULL,
    originals  bigint NOT NULL,
    PRIMARY KEY (topic_id, day)
);
CREATE INDEX topic_day_counts_day_idx ON topic_day_counts (day);

CREATE TABLE topic_day_deltas (
    topic_id   bigint NOT NULL,
    day        date NOT NULL,
    articles   integer NOT NULL,
    originals  integer NOT NULL
);

COMMENT ON TABLE topic_day_counts IS 'tagged articles per topic per UTC day of published_effective, '
    'compacted; the true count adds topic_day_deltas (migration 0010)';
COMMENT ON TABLE topic_day_deltas IS 'changes to topic_day_counts not compacted yet, appended by triggers '
    '(store.rollup.compact folds them in)';

-- article_topics rows inserted: + per (topic, day). Each row's article is looked up by its key
-- (LATERAL): PL/pgSQL plans a statement once per session and keeps the plan, made for however
-- many rows the transition table held that first time; a join the planner could choose would be
-- kept from a call with no rows (a nested loop over the whole transition table per article: a
-- DELETE of 10,000 tags took 65 s). Looking each article up by id stays linear at any size.
-- The articles are locked (FOR SHARE, in id order) so an UPDATE of one runs before or after this,
-- never beside it.
CREATE FUNCTION newsroom_rollup_topics_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO topic_day_deltas (topic_id, day, articles, originals)
    SELECT n.topic_id, a.day, count(*), count(*) FILTER (WHERE a.original)
      FROM (SELECT article_id, topic_id FROM added ORDER BY article_id) n,
           LATERAL (SELECT (published_effective AT TIME ZONE 'UTC')::date AS day,
                           is_original IS NOT FALSE AS original
                      FROM articles WHERE id = n.article_id FOR SHARE) a
     GROUP BY n.topic_id, a.day;
    RETURN NULL;
END $$;

-- article_topics rows deleted: - per (topic, day)
CREATE FUNCTION newsroom_rollup_topics_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO topic_day_deltas (topic_id, day, articles, originals)
    SELECT o.topic_id, a.day, -count(*), -count(*) FILTER (WHERE a.original)
      FROM (SELECT article_id, topic_id FROM removed
             -- not for a topic being deleted (its rows go by cascade): its counts and deltas go with it
             WHERE topic_id IN (SELECT id FROM topics)
             ORDER BY article_id) o,
           LATERAL (SELECT (published_effective AT TIME ZONE 'UTC')::date AS day,
                           is_original IS NOT FALSE AS original
                      FROM articles WHERE id = o.article_id FOR SHARE) a
     GROUP BY o.topic_id, a.day;
    RETURN NULL;
END $$;

-- an article_topics row given another article or topic (never done by Newsroom; by hand only)
CREATE FUNCTION newsroom_rollup_topic_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO topic_day_deltas (topic_id, day, articles, originals)
    SELECT OLD.topic_id, (published_effective AT TIME ZONE 'UTC')::date, -1, -(is_original IS NOT FALSE)::int
      FROM (SELECT published_effective, is_original FROM articles WHERE id = OLD.article_id FOR SHARE) a;
    INSERT INTO topic_day_deltas (topic_id, day, articles, originals)
    SELECT NEW.topic_id, (published_effective AT TIME ZONE 'UTC')::date, 1, (is_original IS NOT FALSE)::int
      FROM (SELECT published_effective, is_original FROM articles WHERE id = NEW.article_id FOR SHARE) a;
    RETURN NULL;
END $$;

-- an article's day or is_original changed: its topics move from the old (day, original) to the new
CREATE FUNCTION newsroom_rollup_article_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    old_day  date := (OLD.published_effective AT TIME ZONE 'UTC')::date;
    new_day  date := (NEW.published_effective AT TIME ZONE 'UTC')::date;
    old_orig integer := (OLD.is_original IS NOT FALSE)::int;
    new_orig integer := (NEW.is_original IS NOT FALSE)::int;
BEGIN
    IF old_day = new_day AND old_orig = new_orig THEN
        RETURN NULL;  -- the same day and the same kind (NULL and true both count as originals)
    ELSIF old_day = new_day THEN
        INSERT INTO topic_day_deltas (topic_id, day, articles, originals)
        SELECT topic_id, new_day, 0, new_orig - old_orig FROM article_topics WHERE article_id = NEW.id;
    ELSE
        INSERT INTO topic_day_deltas (topic_id, day, articles, originals)
        SELECT at.topic_id, m.day, m.articles, m.originals
          FROM article_topics at,
               (VALUES (old_day, -1, -old_orig), (new_day, 1, new_orig)) m (day, articles, originals)
         WHERE at.article_id = NEW.id;
    END IF;
    RETURN NULL;
END $$;

-- an article about to be deleted: its topics go first, while the article still says which day
CREATE FUNCTION newsroom_rollup_article_deleting() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM article_topics WHERE article_id = OLD.id;
    RETURN OLD;
END $$;

-- deleted topics: their deltas go (their counts go by ON DELETE CASCADE)
CREATE FUNCTION newsroom_rollup_topics_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM topic_day_deltas WHERE topic_id IN (SELECT id FROM gone);
    RETURN NULL;
END $$;

CREATE FUNCTION newsroom_rollup_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM topic_day_deltas;
    DELETE FROM topic_day_counts;
    RETURN NULL;
END $$;

-- The triggers first: creating them locks the tables against writes until this migration
-- commits, so the counts filled below miss nothing written meanwhile.
CREATE TRIGGER topic_rollup_added AFTER INSERT ON article_topics
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION newsroom_rollup_topics_added();
CREATE TRIGGER topic_rollup_removed AFTER DELETE ON article_topics
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION newsroom_rollup_topics_removed();
CREATE TRIGGER topic_rollup_moved AFTER UPDATE OF article_id, topic_id ON article_topics
    FOR EACH ROW WHEN (OLD.article_id IS DISTINCT FROM NEW.article_id OR OLD.topic_id IS DISTINCT FROM NEW.topic_id)
    EXECUTE FUNCTION newsroom_rollup_topic_moved();
CREATE TRIGGER topic_rollup_article_changed AFTER UPDATE ON articles
    FOR EACH ROW WHEN (OLD.published_effective IS DISTINCT FROM NEW.published_effective
                       OR OLD.is_original IS DISTINCT FROM NEW.is_original)
    EXECUTE FUNCTION newsroom_rollup_article_changed();
CREATE TRIGGER topic_rollup_article_deleting BEFORE DELETE ON articles
    FOR EACH ROW EXECUTE FUNCTION newsroom_rollup_article_deleting();
CREATE TRIGGER topic_rollup_topics_deleted AFTER DELETE ON topics
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION newsroom_rollup_topics_deleted();
CREATE TRIGGER topic_rollup_truncated AFTER TRUNCATE ON article_topics
    FOR EACH STATEMENT EXECUTE FUNCTION newsroom_rollup_truncated();
CREATE TRIGGER topic_rollup_truncated AFTER TRUNCATE ON articles
    FOR EACH STATEMENT EXECUTE FUNCTION newsroom_rollup_truncated();
CREATE TRIGGER topic_rollup_truncated AFTER TRUNCATE ON topics
    FOR EACH STATEMENT EXECUTE FUNCTION newsroom_rollup_truncated();

INSERT INTO topic_day_counts (topic_id, day, articles, originals)
SELECT at.topic_id, (a.published_effective AT TIME ZONE 'UTC')::date, count(*),
       count(*) FILTER (WHERE a.is_original IS NOT FALSE)
  FROM article_topics at JOIN articles a ON a.id = at.article_id
 GROUP BY 1, 2;
