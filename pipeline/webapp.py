"""Newsroom's pages inside the Airflow UI: a FastAPI app that Airflow's api-server mounts at
/newsroom (pipeline/airflow_plugin.py registers it).

    /newsroom/feeds                  every feed's health, failing and silent first
    /newsroom/feeds/{id}             one feed's poll history
    /newsroom/topics?since=30d       volume per topic over time, trend, top entities
    /newsroom/search?q=...           full-text search (without q: the articles matching the filters)
    /newsroom/articles/{id}          one article: entities marked in its body, topics, sources, copies
    /newsroom/runs/{dag_id}/{run_id} "This run": a DAG run's ingest_runs row

Airflow mounts plugin apps without any authentication, so every route here depends on
`viewer`: the caller's Airflow login (its JWT, as a bearer token or the UI's cookie), checked by
the api-server's own auth manager, and allowed to see Airflow's website. Every query is a
pipeline.queries function (parameterised, read-only) on a read-only connection.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from importlib.resources import files
from typing import Annotated, Any

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.resource_details import (
    AccessView,
    DagAccessEntity,
    DagDetails,
)
from airflow.api_fastapi.core_api.security import get_user
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from pipeline import config, periods, queries, store, webpages
from pipeline.errors import (
    DatabaseUnavailable,
    NewsroomError,
    NotFound,
    TransientError,
    UserInputError,
)

log = logging.getLogger(__name__)

# The DAGs whose runs keep an ingest_runs row (queries.run_key says under which key).
RUN_DAGS = ("news_ingest", "news_retag")
# The polls a feed's page lists, newest first.
POLLS_SHOWN = 50
# Where Airflow mounts this app (pipeline/airflow_plugin.py).
URL_PREFIX = "/newsroom"
# Results per search page.
RESULTS = 20
# A page ranks the newest this many matches (the CLI: queries.MAX_CANDIDATES, 10,000): same
# formula, a tenth of the rows to rank, so a common word answers in well under 100 ms at a
# million articles (bench/results/ui.json). A period or a filter reaches further back.
SEARCH_CANDIDATES = 1_000
# The longest text a page takes in one URL parameter.
MAX_TEXT = 500


def viewer(request: Request, user: Annotated[Any, Depends(get_user)]) -> Any:
    """The logged-in Airflow user, if Airflow lets them see its website; else 403. (get_user,
    Airflow's own dependency, has already refused a missing, expired or forged token.) Not async:
    an auth manager may ask a database or a server, which must not block the event loop."""
    if not get_auth_manager().is_authorized_view(access_view=AccessView.WEBSITE, user=user):
        raise HTTPException(status_code=403, detail="Your Airflow login may not see this page.")
    return user


Viewer = Annotated[Any, Depends(viewer)]
# Every text a page takes from its URL: longer is not a search or a date, just a load on the server.
Text = Annotated[str, Query(max_length=MAX_TEXT)]


@contextmanager
def _reading() -> Iterator[Any]:
    settings = config.Settings.from_env()
    with store.db.reading(settings) as conn:
        yield conn


def _base(request: Request) -> str:
    """Where this app is mounted ("/newsroom", behind any prefix Airflow has): links are built on it."""
    return request.scope.get("root_path", "").rstrip("/")


def _page(request: Request, template: str, *, status: int = 200, **values: Any) -> HTMLResponse:
    # no-store: a page shows one user's view of live data; no cache should keep it
    return HTMLResponse(webpages.render(template, base=_base(request), **values), status_code=status,
                        headers={"Cache-Control": "no-store"})


def _error(request: Request, status: int, message: str) -> HTMLResponse:
    return _page(request, "error.html", status=status, message=message, title="Newsroom")


def _guarded(request: Request, build: Callable[[Any], HTMLResponse]) -> HTMLResponse:
    """Run one page's queries; a bad input, an unknown name or a database that is down becomes a
    page saying so (400, 404, 503) rather than a traceback."""
    try:
        with _reading() as conn:
            return build(conn)
    except UserInputError as exc:
        return _error(request, 400, str(exc))
    except NotFound as exc:
        return _error(request, 404, str(exc))
    except OverflowError:  # a date so far back that the period before it is before year 1
        return _error(request, 400, "That period reaches outside the calendar; choose dates after 1900.")
    except DatabaseUnavailable as exc:
        log.warning("newsroom pages: %s", exc)
        return _error(request, 503, f"The Newsroom database is not reachable: {exc}")
    except TransientError as exc:  # a statement timeout, a deadlock: worth trying again
        log.warning("newsroom pages: %s", exc)
        return _error(request, 503, f"The database could not answer in time; try again, or narrow the period "
                                    f"or the search ({exc})")
    except NewsroomError as exc:
        log.warning("newsroom pages: %s", exc)
        return _error(request, 500, str(exc))


def _clean(text: str) -> str:
    """A URL parameter without control characters (a NUL cannot even reach PostgreSQL)."""
    return "".join(c if c.isprintable() else " " for c in text).strip()


def _when(value: str | None, option: str, *, default: str | None = None, future: bool = False) -> datetime | None:
    text = (value or "").strip() or default
    return queries.parse_when(text, option=option, future=future) if text else None


def _login(request: Request) -> str:
    """Airflow's login page, under whatever prefix Airflow is served at."""
    return _base(request).removesuffix(URL_PREFIX) + "/auth/login"


def create_app() -> FastAPI:
    app = FastAPI(title="Newsroom", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(HTTPException)
    async def refused(request: Request, exc: HTTPException) -> Response:
        # A person who is not logged in sees a page with the way to log in, not JSON.
        message = str(exc.detail)
        if exc.status_code == 401:
            message = "You are not logged in to Airflow."
        page = webpages.render("error.html", base=_base(request), message=message, title="Newsroom",
                               login=_login(request) if exc.status_code == 401 else None)
        return HTMLResponse(page, status_code=exc.status_code,
                            headers={**(exc.headers or {}), "Cache-Control": "no-store"})

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'request'}: {e.get('msg', '')}"
                             for e in exc.errors()[:5])
        page = webpages.render("error.html", base=_base(request), title="Newsroom",
                               message=f"This page cannot be shown for that address ({problems}).")
        return HTMLResponse(page, status_code=422)

    @app.get("/", include_in_schema=False)
    def home(request: Request, _: Viewer) -> RedirectResponse:
        return RedirectResponse(f"{_base(request)}/feeds", status_code=307)

    @app.get("/static/newsroom.css", include_in_schema=False)
    def stylesheet(_: Viewer) -> Response:
        css = files("pipeline").joinpath("templates", "newsroom.css").read_text()
        return Response(css, media_type="text/css", headers={"Cache-Control": "private, max-age=300"})

    @app.get("/feeds", response_class=HTMLResponse)
    def feeds_page(request: Request, _: Viewer) -> HTMLResponse:
        def build(conn: Any) -> HTMLResponse:
            rows = queries.feed_health(conn)
            polled = [r for r in rows if r["enabled"]]
            counts: dict[str, int] = {}
            for r in rows:
                counts[r["status"]] = counts.get(r["status"], 0) + 1
            return _page(request, "feeds.html", title="Feeds", tab="feeds", feeds=rows, counts=counts,
                         polled=len(polled))
        return _guarded(request, build)

    @app.get("/feeds/{feed_id}", response_class=HTMLResponse)
    def feed_page(request: Request, feed_id: int, _: Viewer) -> HTMLResponse:
        def build(conn: Any) -> HTMLResponse:
            row = queries.feed(conn, feed_id)
            return _page(request, "feed.html", title=row["name"] or row["url"], tab="feeds", feed=row,
                         polls=queries.feed_polls(conn, feed_id, limit=POLLS_SHOWN))
        return _guarded(request, build)

    @app.get("/topics", response_class=HTMLResponse)
    def topics_page(request: Request, _: Viewer, since: Text = "30d", until: Text = "") -> HTMLResponse:
        since, until = _clean(since), _clean(until)

        def build(conn: Any) -> HTMLResponse:
            start = _when(since, "since", default="30d")
            end = _when(until, "until", future=True) or queries.current_time()
            assert start is not None
            bucket = periods.choose_bucket(start, end)
            volumes = queries.topic_volumes(conn, start, until=end)
            timeline = queries.topic_timeline(conn, start, until=end, bucket=bucket)
            return _page(request, "topics.html", title="Topics", tab="topics", since=since, until=until,
                         start=start, end=end, bucket=bucket, volumes=volumes,
                         bars=webpages.topic_bars(timeline, start, end, bucket),
                         entities=queries.topic_top_entities(conn, start, until=end))
        return _guarded(request, build)

    @app.get("/search", response_class=HTMLResponse)
    def search_page(request: Request, _: Viewer, q: Text = "", topic: Text = "", entity: Text = "",
                    since: Text = "", until: Text = "", arrived: Text = "", language: Text = "", feed: Text = "",
                    tag: Text = "", outlet: Text = "",
                    limit: Annotated[int, Query(ge=1, le=200)] = RESULTS) -> HTMLResponse:
        form = {k: _clean(v) for k, v in {"q": q, "topic": topic, "entity": entity, "since": since, "until": until,
                                           "arrived": arrived, "language": language, "feed": feed, "tag": tag,
                                           "outlet": outlet}.items()}
        q, topic, entity, since, until, arrived, language, feed, tag, outlet = form.values()

        def build(conn: Any) -> HTMLResponse:
            scope = queries.Scope(feed=feed.strip() or None, tag=tag.strip() or None,
                                  outlet=outlet.strip() or None, language=language.strip() or None)
            window = queries.arrival_window(conn, arrived.strip()) if arrived.strip() else None
            filters = {"topic": topic.strip() or None, "entity": entity.strip() or None,
                       "since": _when(since, "since"), "until": _when(until, "until", future=True),
                       "arrived": window,
                       "limit": limit, "scope": scope}
            if q.strip():
                rows = queries.search(conn, q, max_candidates=SEARCH_CANDIDATES, **filters)
            else:
                rows = queries.articles(conn, **filters)
            return _page(request, "search.html", title="Search", tab="search", form=form, results=rows,
                         searched=bool(q.strip()), topics=queries.topic_slugs(conn), candidates=SEARCH_CANDIDATES)
        return _guarded(request, build)

    @app.get("/articles/{article_id}", response_class=HTMLResponse)
    def article_page(request: Request, article_id: int, _: Viewer) -> HTMLResponse:
        def build(conn: Any) -> HTMLResponse:
            row = queries.article(conn, article_id)
            body = webpages.highlight(queries.article_body(conn, article_id), queries.mentions(conn, article_id))
            for t in row["topic_tags"]:
                t["evidence_text"] = queries.evidence_summary(t["evidence"])
            return _page(request, "article.html", title=row["title"] or row["url"], tab="search", article=row,
                         body=body)
        if article_id <= 0:
            return _error(request, 404, f"no article with id {article_id}")
        return _guarded(request, build)

    @app.get("/runs/{dag_id}/{run_id}", response_class=HTMLResponse)
    def run_page(request: Request, dag_id: str, run_id: str, user: Viewer) -> HTMLResponse:
        if not get_auth_manager().is_authorized_dag(method="GET", access_entity=DagAccessEntity.RUN,
                                                    details=DagDetails(id=dag_id), user=user):
            raise HTTPException(status_code=403, detail="Your Airflow login may not see this DAG's runs.")
        if dag_id not in RUN_DAGS:
            return _page(request, "run.html", title="This run", tab=None, dag_id=dag_id, run_id=run_id, run=None,
                         known=False)

        def build(conn: Any) -> HTMLResponse:
            return _page(request, "run.html", title="This run", tab=None, dag_id=dag_id, run_id=run_id,
                         run=queries.ingest_run(conn, dag_id, run_id), known=True)
        return _guarded(request, build)

    return app
