"""The extraction stage against stored pages: text lands, failures have reasons, copies cluster."""

from dataclasses import replace

from localsite import rss

from pipeline import ingest, store

STORY = [
    "Turkish President Recep Tayyip Erdogan said on Tuesday that Ankara would not step back from its "
    "purchase of the Russian S-400 air defence system, despite warnings from Washington.",
    "The United States has suspended Turkey from the F-35 fighter jet programme and lawmakers have "
    "threatened sanctions under the CAATSA law, officials in both capitals said.",
    "Erdogan told reporters in Ankara that the second battery would be delivered on schedule and that "
    "Turkey was also looking at Russian Su-35 and Su-57 fighters as an alternative.",
    "Analysts said the dispute had become the most serious test of relations between the two NATO allies "
    "in decades, with little sign that either side was ready to compromise soon.",
]


def _page(title, paragraphs, published="2019-10-01T10:00:00+00:00", byline="By Staff Reporter"):
    ps = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title} | Test News</title>'
            f'<meta property="article:published_time" content="{published}"></head><body>'
            f"<nav><a href='/'>Home</a> <a href='/world'>World</a></nav><article><h1>{title}</h1>"
            f"<p class='byline'>{byline}</p>{ps}</article><footer>Copyright Test News</footer></body></html>")


def test_extraction_stage_text_failures_and_clusters(settings, site, feeds_file, conn):
    original = site.add("/a/original.html", _page("Erdogan stands by S-400", STORY), content_type="text/html")
    copy = site.add("/b/copy.html", _page("Erdogan stands by S-400 deal", STORY + ["(Reporting by Wire Service)"],
                                          published="2019-10-01T14:00:00+00:00"), content_type="text/html")
    other = site.add("/c/other.html", _page("Idlib shelling", [
        "Syrian government forces backed by Russian air power shelled villages in southern Idlib province, "
        "rescue workers said, as thousands of civilians fled north towards the Turkish border.",
        "The offensive is the heaviest since a ceasefire was agreed in the de-escalation zone last year, and "
        "aid groups warned of a humanitarian catastrophe in the camps along the frontier.",
        "Turkey, which has twelve observation posts in the province, called on Moscow to rein in its ally and "
        "said the attacks endangered the agreement reached between the two countries in Sochi.",
    ]), content_type="text/html")
    paywall = site.add("/d/paywall.html", _page("Exclusive", [
        "Turkey is weighing its options on the S-400.",
        "Subscribe to continue reading. Already a subscriber? Log in.",
    ]), content_type="text/html")
    site.add("/f1.xml", rss([(original, "Erdogan stands by S-400"), (other, "Idlib"), (paywall, "Exclusive")]),
             content_type="application/rss+xml")
    site.add("/f2.xml", rss([(copy, "Erdogan stands by S-400 deal")]), content_type="application/rss+xml")
    s = replace(settings, feeds_file=feeds_file([site.url("/f1.xml"), site.url("/f2.xml")]))

    _, results, _ = ingest.ingest_once(s)
    extract = next(r for r in results if r.stage == "extract")
    assert extract.counts["extracted"] == 3 and extract.counts["failed"] == 1
    assert next(r for r in results if r.stage == "cluster").counts["duplicates"] == 1

    rows = {r[0]: r[1:] for r in conn.execute(
        """SELECT url, status, title, word_count, published_at IS NOT NULL, language, cluster_id, is_original,
                  last_error, body FROM articles""")}
    status, title, words, dated, lang, cluster, is_orig, error, body = rows[original]
    assert status in ("extracted", "tagged") and words > 80 and dated and lang == "en"
    assert "S-400" in body and "Home" not in body and "Copyright" not in body
    assert rows[copy][5] == cluster and is_orig and rows[copy][6] is False
    assert rows[other][5] != cluster and rows[other][6] is True
    assert rows[paywall][0] == "failed" and rows[paywall][7].startswith("paywall")

    # re-running changes nothing
    before = conn.execute("SELECT count(*), sum(word_count) FROM articles").fetchone()
    conn.commit()
    assert ingest.extract_pages(s).counts["claimed"] == 0
    assert conn.execute("SELECT count(*), sum(word_count) FROM articles").fetchone() == before


def test_reprocessing_extraction_from_stored_pages_needs_no_network(settings, site, feeds_file, conn):
    a = site.add("/a.html", _page("Erdogan stands by S-400", STORY), content_type="text/html")
    site.add("/f.xml", rss([(a, "A")]), content_type="application/rss+xml")
    s = replace(settings, feeds_file=feeds_file([site.url("/f.xml")]))
    ingest.ingest_once(s)
    site.stop()  # no network from here on
    conn.execute("UPDATE articles SET body = 'stale', word_count = 1")
    conn.commit()
    ids = store.queue.select_for_reprocessing(conn, stage="extract")
    conn.commit()
    assert len(ids) == 1
    assert ingest.extract_pages(s, ids=ids).counts["extracted"] == 1
    assert conn.execute("SELECT word_count > 80 FROM articles").fetchone()[0]


def test_the_original_is_the_earliest_copy_by_the_publication_time_users_see(settings, conn):
    """The deliberate fix: clustering uses `published_effective` (page date, else feed date, else
    discovery), as every query does. A copy whose page has no date but whose feed entry is the
    earliest is the original; clustering by page date or discovery made the later copy win."""
    from datetime import UTC, datetime, timedelta

    from pipeline import dedup
    from pipeline.records import Extraction, FeedEntry, FeedSpec

    t0 = datetime(2026, 11, 2, 8, tzinfo=UTC)
    store.feeds.upsert_feeds(conn, [FeedSpec(url="http://127.0.0.1/f.xml", name="f")])
    feed_id = conn.execute("SELECT id FROM feeds").fetchone()[0]
    urls = ["http://127.0.0.1/page-dated", "http://127.0.0.1/feed-dated"]
    ids = store.feeds.upsert_entries(conn, feed_id, [
        FeedEntry(url=urls[0], entry_url=urls[0], title="a"),
        FeedEntry(url=urls[1], entry_url=urls[1], title="b", published=t0)])
    text = " ".join(STORY)
    fp = dedup.fingerprint(text)
    store.articles.save_extraction(conn, ids[0], Extraction(text=text, published_at=t0 + timedelta(hours=1)),
                                   (fp.signature, fp.bands))
    store.articles.save_extraction(conn, ids[1], Extraction(text=text), (fp.signature, fp.bands))
    conn.commit()

    assert ingest.cluster_articles(settings).counts["duplicates"] == 1
    rows = dict(conn.execute("SELECT url, is_original FROM articles").fetchall())
    assert rows == {urls[0]: False, urls[1]: True}
    assert len({r[0] for r in conn.execute("SELECT cluster_id FROM articles")}) == 1
