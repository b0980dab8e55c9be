-- v_feed_health: one row per feed with its health, as `newsroom feeds status` shows it.
--
-- Columns:
--   feed_id              feeds.id
--   name, url, tags      as in the feed list
--   enabled              false while the feed is not polled (it is never deleted): disabled_reason says why
--   status               one word, by the same rules as pipeline/feeds.py:health, in this order:
--                        when not enabled, its disabled_reason (paused | removed | gone | unlisted |
--                        moved) | new (never polled) | failing (last poll failed:
--                        failure_streak > 0) | silent (answers, but nothing new for 7 days) | ok
--   last_polled_at       when the last poll finished
--   last_success_at      when the last successful poll (200 or 304) finished
--   last_new_article_at  when a poll last brought a new article
--   next_poll_at         when it is due next
--   failure_streak       consecutive failed polls (0 after any success)
--   last_http_status     HTTP status of the last poll
--   last_error_class     dns, connect, timeout, tls, http_4xx, http_410_gone, http_429, http_5xx,
--                        not_a_feed, parse_error, too_large, blocked_address, ... (NULL when ok)
--   last_error           the last failure's message (NULL when ok)
--   articles_total       articles the feed has ever carried
--   articles_7d          articles it carried for the first time in the last 7 x 24 hours
--   articles_per_day_7d  articles_7d / 7, one decimal
--   daily_7d             articles_7d per 24-hour period, oldest first; the last element is the
--                        past 24 hours (int[7], sums to articles_7d)
--   managed_by           file (the feeds file lists it and keeps it in sync) | user (added or
--                        imported from the CLI; the file's sync leaves it alone)
--   outlet               the outlet name set for the feed (NULL: each article's site)
--   disabled_reason      paused | removed | gone (410) | unlisted (dropped from the feeds file) |
--                        moved (moved for good to a URL another feed has); NULL while enabled
--   disabled_at          when it stopped being polled
--   disabled_detail      the reason in words
--   redirect_url         where the feed's URL redirects for good (301/308), while it does
--   redirect_polls       polls in a row with that redirect; at NEWSROOM_FEED_MOVE_AFTER it moves
CREATE OR REPLACE VIEW v_feed_health AS
SELECT f.id AS feed_id,
       f.name,
       f.url,
       f.tags,
       f.enabled,
       CASE WHEN NOT f.enabled THEN coalesce(f.disabled_reason, 'disabled')
            WHEN f.last_polled_at IS NULL THEN 'new'
            WHEN f.consecutive_failures > 0 THEN 'failing'
            WHEN f.last_new_article_at < now() - interval '7 days'
              OR (f.last_new_article_at IS NULL
                  AND coalesce(f.created_at, f.last_polled_at) < now() - interval '7 days') THEN 'silent'
            ELSE 'ok' END AS status,
       f.last_polled_at,
       f.last_success_at,
       f.last_new_article_at,
       f.next_poll_at,
       f.consecutive_failures AS failure_streak,
       f.last_http_status,
       f.last_error_class,
       f.last_error,
       (SELECT count(*) FROM article_sources s WHERE s.feed_id = f.id) AS articles_total,
       w.n AS articles_7d,
       round(w.n / 7.0, 1) AS articles_per_day_7d,
       w.daily AS daily_7d,
       f.managed_by,
       f.outlet,
       f.disabled_reason,
       f.disabled_at,
       f.disabled_detail,
       f.redirect_url,
       f.redirect_polls
  FROM feeds f
 CROSS JOIN LATERAL (
       -- One index range scan per feed on (feed_id, first_seen_at), bucketed by 24-hour period.
       SELECT count(*) AS n,
              ARRAY[count(*) FILTER (WHERE s.first_seen_at <= now() - interval '6 days'),
                    count(*) FILTER (WHERE s.first_seen_at >  now() - interval '6 days'
                                       AND s.first_seen_at <= now() - interval '5 days'),
                    count(*) FILTER (WHERE s.first_seen_at >  now() - interval '5 days'
                                       AND s.first_seen_at <= now() - interval '4 days'),
                    count(*) FILTER (WHERE s.first_seen_at >  now() - interval '4 days'
                                       AND s.first_seen_at <= now() - interval '3 days'),
                    count(*) FILTER (WHERE s.first_seen_at >  now() - interval '3 days'
                                       AND s.first_seen_at <= now() - interval '2 days'),
                    count(*) FILTER (WHERE s.first_seen_at >  now() - interval '2 days'
                                       AND s.first_seen_at <= now() - interval '1 day'),
                    count(*) FILTER (WHERE s.first_seen_at >  now() - interval '1 day')]::int[] AS daily
         FROM article_sources s
        WHERE s.feed_id = f.id AND s.first_seen_at > now() - interval '7 days') w;
