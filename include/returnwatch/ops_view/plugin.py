"""The returnwatch page in the Airflow UI: a nav entry and the app that serves the page.

Airflow 3's UI is React; a plugin adds a page in two parts, both declared here:

- ``fastapi_apps``: a FastAPI app (``returnwatch.ops_view.app``) that the API server mounts
  under ``/returnwatch``: the status page and its JSON twin, for signed-in Airflow users only;
- ``external_views``: the nav entry. With ``url_route`` the UI opens the page inside its own
  chrome (an iframe at ``/plugin/returnwatch``) instead of leaving Airflow.

The plugin is registered through the ``airflow.plugins`` entry point (pyproject.toml), so
every Airflow process loads this module: task processes (for macros), the scheduler and the
DAG processor (timetables, listeners). Only the API server mounts apps, so the app is built
when ``fastapi_apps`` is first read: FastAPI, Jinja2 and Airflow's security module cost about
1.5 s to import, which no task should pay.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

from returnwatch.ops_view import documents

URL_PREFIX = "/returnwatch"
URL_ROUTE = "returnwatch"  # the UI shows the page at /plugin/returnwatch


class ReturnwatchPlugin(AirflowPlugin):
    name = "returnwatch"

    @property
    def fastapi_apps(self) -> list[dict[str, Any]]:  # type: ignore[override]
        from returnwatch.ops_view.app import app

        return [{"app": app, "url_prefix": URL_PREFIX, "name": "returnwatch status"}]

    @property
    def external_views(self) -> list[dict[str, Any]]:  # type: ignore[override]
        return [
            {
                "name": "returnwatch",
                "href": f"{documents.api_root_path()}{URL_PREFIX}/",
                "destination": "nav",
                "url_route": URL_ROUTE,
                # A button of its own in the nav bar, not an entry in the "Plugins" menu.
                "nav_top_level": True,
            }
        ]
