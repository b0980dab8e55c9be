"""The Newsroom plugin for Airflow's UI: Feeds, Topics and Search under a "Newsroom" entry in the
navigation, and a "This run" tab on every DAG run. Registered through the `airflow.plugins`
entry point (pyproject.toml), so `newsroom airflow up`, the demo and the compose image load it
from the installed package; nothing goes in a plugins folder.

The pages are pipeline/webapp.py, mounted in the api-server at /newsroom; the external views
show them in the UI as iframes (same origin: the UI's login cookie goes along, and each route
checks it).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from pipeline.webapp import URL_PREFIX, create_app


class NewsroomPlugin(AirflowPlugin):
    name = "newsroom"
    fastapi_apps = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "Newsroom"}]
    external_views = [
        # hrefs are relative to the UI's base URL, so a deployment under a path prefix works too
        {"name": "Newsroom", "href": "newsroom/feeds", "url_route": "newsroom", "destination": "nav",
         "nav_top_level": True},
        {"name": "This run", "href": "newsroom/runs/{DAG_ID}/{RUN_ID}", "url_route": "newsroom-run",
         "destination": "dag_run"},
    ]
