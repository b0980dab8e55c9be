"""Retention, the pure parts: ages for `newsroom prune` and its settings, and the charset decision
a fetched page is stored with (and decoded again from, with that decision or a corrected one)."""

import codecs
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.config import ConfigError, Settings, format_duration, parse_duration, to_env
from pipeline.fetch import decode_as, decode_html, decode_page, web_codec
from pipeline.states import CharsetSource

# --- ages ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "age"), [
    ("90d", timedelta(days=90)), ("36h", timedelta(hours=36)), ("12w", timedelta(weeks=12)),
    (" 180D ", timedelta(days=180)), ("1h", timedelta(hours=1)), ("7 d", timedelta(days=7)),
])
def test_ages_in_hours_days_and_weeks(text, age):
    assert parse_duration(text) == age
    assert parse_duration(format_duration(age)) == age


@pytest.mark.parametrize("text", ["", "90", "d", "90m", "90s", "0d", "-1d", "1.5d", "90 days", "9999999d", "999999d", "5300w",
                                  "90d;DROP TABLE articles", "９０d", "90d\n", "\x00", "1e3d", "x" * 500])
def test_a_bad_age_is_one_line_naming_the_option(text):
    if text == "90d\n":  # surrounding whitespace is forgiven
        assert parse_duration(text) == timedelta(days=90)
        return
    with pytest.raises(ConfigError) as err:
        parse_duration(text, name="--raw-pages-older-than")
    message = str(err.value)
    assert "\n" not in message and "--raw-pages-older-than" in message and "90d" in message
    assert len(message) < 200


def test_format_duration_picks_the_largest_whole_unit():
    assert format_duration(timedelta(days=90)) == "90d"
    assert format_duration(timedelta(days=14)) == "2w"
    assert format_duration(timedelta(hours=36)) == "36h"


def test_retention_settings_defaults_errors_and_round_trip(tmp_path):
    d = Settings()
    assert d.prune_raw_pages_after == timedelta(days=90) and d.prune_polls_after == timedelta(days=180)
    assert d.maintenance_schedule == "30 3 * * *"
    s = Settings.from_env({"NEWSROOM_PRUNE_RAW_PAGES_AFTER": "30d", "NEWSROOM_PRUNE_POLLS_AFTER": "4w",
                           "NEWSROOM_MAINTENANCE_SCHEDULE": "0 4 * * *", "NEWSROOM_STATE_DIR": str(tmp_path)})
    assert s.prune_raw_pages_after == timedelta(days=30) and s.prune_polls_after == timedelta(weeks=4)
    assert s.maintenance_schedule == "0 4 * * *"
    assert Settings.from_env(to_env(s)) == s
    with pytest.raises(ConfigError, match="NEWSROOM_PRUNE_POLLS_AFTER"):
        Settings.from_env({"NEWSROOM_PRUNE_POLLS_AFTER": "six months"})


# --- the charset decision ------------------------------------------------------------------

CAFE = "Le café de la gare, naïve façade, 20 € — à bientôt."
PAGE = "<!doctype html><html><head>{meta}<title>t</title></head><body><p>{text}</p></body></html>"


def _page(text: str = CAFE, meta: str = "") -> str:
    return PAGE.format(meta=meta, text=text * 5)


@pytest.mark.parametrize(("body", "ctype", "charset", "source"), [
    # a byte-order mark wins over everything
    (codecs.BOM_UTF8 + _page().encode("utf-8"), "text/html; charset=iso-8859-1", "utf-8", CharsetSource.BOM),
    (codecs.BOM_UTF16_LE + _page().encode("utf-16-le"), "text/html", "utf-16", CharsetSource.BOM),
    # the header, when the bytes agree
    (_page().encode("utf-8"), "text/html; charset=UTF-8", "utf-8", CharsetSource.HEADER),
    (_page().encode("cp1252"), "text/html; charset=windows-1252", "cp1252", CharsetSource.HEADER),
    # <meta>, when there is no header charset
    (_page(meta='<meta charset="windows-1252">').encode("cp1252"), "text/html", "cp1252", CharsetSource.META),
    (_page(meta='<meta http-equiv="Content-Type" content="text/html; charset=utf-8">').encode(), None, "utf-8",
     CharsetSource.META),
    # the header says UTF-8, the bytes are Windows-1252: detected
    (_page().encode("cp1252"), "text/html; charset=utf-8", "cp1252", CharsetSource.DETECTED),
    # meta and header disagree: the header (a real charset) is taken, and here it is right
    (_page(meta='<meta charset="utf-8">').encode("cp1252"), "text/html; charset=windows-1252", "cp1252",
     CharsetSource.HEADER),
    # a page declaring Latin-1 whose bytes are valid UTF-8 is lying: UTF-8, detected
    (_page(meta='<meta charset="iso-8859-1">').encode("utf-8"), "text/html", "utf-8", CharsetSource.DETECTED),
    # nothing declared, plain ASCII: valid UTF-8
    (b"<html><body><p>plain words</p></body></html>", None, "utf-8", CharsetSource.DETECTED),
    # a charset no browser knows is ignored
    (_page().encode("utf-8"), "text/html; charset=base64", "utf-8", CharsetSource.DETECTED),
])
def test_the_decision_is_recorded_with_where_it_came_from(body, ctype, charset, source):
    d = decode_page(body, ctype)
    assert (d.charset, d.source) == (charset, source)
    assert CAFE in d.text or "plain words" in d.text
    assert decode_html(body, ctype) == (d.text, d.charset)
    assert decode_as(body, d.charset) == d.text.replace("\x00", "")


def test_invalid_bytes_decode_with_a_recorded_decision():
    body = b"<html><body><p>ok \xff\xfe\x80\x81 \xc3\x28 end</p></body></html>" * 3
    d = decode_page(body, "text/html; charset=utf-8")
    assert d.source in (CharsetSource.DETECTED, CharsetSource.FALLBACK) and d.charset
    assert "ok" in d.text and "end" in d.text
    assert decode_as(body, d.charset) == d.text


def test_a_wrong_decision_is_corrected_from_the_stored_bytes():
    # The header names a real charset, and the bytes decode in it without error: the fetch
    # trusts it, and the text is wrong. The bytes are kept, so a correction gets the page back.
    body = _page().encode("cp1252")
    d = decode_page(body, "text/html; charset=windows-1251")
    assert (d.charset, d.source) == ("cp1251", CharsetSource.HEADER) and CAFE not in d.text
    assert CAFE in decode_as(body, web_codec("windows-1252"))


def test_decode_as_refuses_what_is_no_text_encoding_and_web_codec_names_the_codec():
    with pytest.raises(ValueError, match="not a text encoding"):
        decode_as(b"x", "base64")
    with pytest.raises(ValueError):
        decode_as(b"x", "no-such-charset")
    assert web_codec("Windows-1252") == "cp1252" and web_codec("UTF8") == "utf-8"
    assert web_codec("utf-7") is None and web_codec("rot13") is None and web_codec("") is None


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000), st.sampled_from([None, "text/html", "text/html; charset=utf-8",
                                                  "text/html; charset=iso-8859-1", "text/html; charset=shift_jis",
                                                  "text/html; charset=utf-16"]))
def test_decoding_the_stored_bytes_with_the_recorded_decision_gives_the_same_text(body, ctype):
    d = decode_page(body, ctype)
    assert decode_as(body, d.charset) == d.text.replace("\x00", "")
