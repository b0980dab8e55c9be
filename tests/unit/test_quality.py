from datetime import UTC, datetime, timedelta

from pipeline.quality import Facts, evaluate, failures

NOW = datetime(2019, 10, 1, 12, tzinfo=UTC)


def _facts(**kw):
    base = dict(feeds_polled=10, feeds_ok=8, last_feed_success=NOW, extract_attempted=20, extract_succeeded=18,
                stuck={}, now=NOW)
    return Facts(**{**base, **kw})


def _sev(checks, name):
    return next(c.severity for c in checks if c.name == name)


def test_a_healthy_run_passes():
    assert failures(evaluate(_facts(), min_extract_rate=0.5, stuck_hours=6)) == []


def test_all_feeds_failing_after_recent_success_fails_the_run():
    checks = evaluate(_facts(feeds_ok=0, last_feed_success=NOW - timedelta(hours=2)), min_extract_rate=0.5,
                      stuck_hours=6)
    assert _sev(checks, "feeds_polled") == "error"
    assert "network" in failures(checks)[0].message


def test_all_feeds_failing_on_a_new_offline_install_is_a_warning():
    checks = evaluate(_facts(feeds_ok=0, last_feed_success=None), min_extract_rate=0.5, stuck_hours=6)
    assert _sev(checks, "feeds_polled") == "warning"


def test_low_extraction_rate_fails_but_small_samples_do_not():
    assert _sev(evaluate(_facts(extract_succeeded=3), min_extract_rate=0.5, stuck_hours=6), "extraction_rate") == "error"
    checks = evaluate(_facts(extract_attempted=3, extract_succeeded=0), min_extract_rate=0.5, stuck_hours=6)
    assert all(c.name != "extraction_rate" for c in checks)


def test_stuck_articles_fail_with_counts():
    checks = evaluate(_facts(stuck={"fetched": 4, "discovered": 0}), min_extract_rate=0.5, stuck_hours=6)
    [bad] = failures(checks)
    assert bad.name == "stuck_articles" and "4 fetched" in bad.message
