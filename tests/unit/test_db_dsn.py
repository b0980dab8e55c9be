"""NEWSROOM_DATABASE_URL's validation (store.db._validate_dsn): the accepted forms pass, anything
that is not PostgreSQL is refused with one line naming the setting and the accepted forms, and
no message carries the password."""

import pytest

from pipeline.errors import ConfigError
from pipeline.store.db import _validate_dsn


@pytest.mark.parametrize(("dsn", "expected"), [
    ("postgresql://u:pw@db.example:5432/newsroom", "postgresql://u:pw@db.example:5432/newsroom"),
    ("postgres://u:pw@db.example/newsroom", "postgresql://u:pw@db.example/newsroom"),
    ("postgresql+psycopg://u@db.example/newsroom", "postgresql://u@db.example/newsroom"),
    ("postgres+psycopg2://u@db.example/newsroom", "postgresql://u@db.example/newsroom"),
    ("POSTGRESQL://u@db.example/newsroom", "postgresql://u@db.example/newsroom"),
    ("  postgresql://u@db.example/newsroom", "postgresql://u@db.example/newsroom"),
    ("host=db.example dbname=newsroom user=u password=a:b", "host=db.example dbname=newsroom user=u password=a:b"),
    ("dbname=newsroom", "dbname=newsroom"),
])
def test_postgres_forms_are_accepted(dsn, expected):
    assert _validate_dsn(dsn) == expected


@pytest.mark.parametrize("dsn", [
    "mysql://newsroom:Sup3r-Secret@db.example/newsroom",
    "mysql+pymysql://newsroom:Sup3r-Secret@db.example/newsroom",
    "sqlite:///newsroom.db",
    "jdbc:postgresql://db.example/newsroom?password=Sup3r-Secret",
    "http://newsroom:Sup3r-Secret@db.example/",
    "MYSQL://newsroom:Sup3r-Secret@db.example/newsroom",
    "redis://:Sup3r-Secret@localhost:6379/0",
    "x" * 10_000 + "://newsroom:Sup3r-Secret@db.example/",  # a huge scheme
])
def test_other_schemes_are_refused_in_one_line_naming_the_setting_and_the_forms(dsn):
    with pytest.raises(ConfigError) as info:
        _validate_dsn(dsn)
    message = str(info.value)
    assert "NEWSROOM_DATABASE_URL" in message and "not a PostgreSQL DSN" in message
    assert "postgresql://" in message and "postgres://" in message and "key=value" in message
    assert "\n" not in message and len(message) < 400
    assert "Sup3r" not in message and "Secret" not in message
    assert repr(dsn.split(":")[0][:20])[1:-1] in message  # the scheme it starts with, cut short


@pytest.mark.parametrize("dsn", [
    "this is not a dsn",
    "host=db.example password='Sup3r-Secret dbname=newsroom",
    "postgresql://newsroom:Sup3r-Secret@db.example/newsroom?sslmode=x&password",
    "postgresql://newsroom:Sup3r-Secret@db\x00.example/newsroom",  # libpq would cut it at the NUL
    "postgresql://newsroom:Sup3r-Secret@db.example/news\udcffroom",  # non-UTF-8 bytes in the environment
    "\x00\ud800",
])
def test_malformed_dsns_still_name_the_setting_and_the_forms_without_the_password(dsn):
    with pytest.raises(ConfigError) as info:
        _validate_dsn(dsn)
    message = str(info.value)
    assert "NEWSROOM_DATABASE_URL" in message and "key=value" in message
    assert "Sup3r" not in message and "Secret" not in message
