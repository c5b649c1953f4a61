"""The app behind the returnwatch page: every source's status, as HTML and as JSON.

The Airflow API server mounts ``app`` under ``/returnwatch`` (``plugin.py``):
``GET /returnwatch/`` (the page), ``GET /returnwatch/status.json`` (the same for scripts,
404 without a snapshot) and ``GET /returnwatch/docs/<name>.md`` (the guides the DAG docs link).
Everything is read from the analysts' snapshot, never the live warehouse; access is Airflow's
own security dependency (the UI's JWT). Details: docs/internals.md#ops-view-the-returnwatch-page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
from airflow.api_fastapi.core_api.security import requires_access_view
from fastapi import Depends, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException

from returnwatch import settings, status
from returnwatch.ops_view import documents

app = FastAPI(
    title="returnwatch status",
    # Whoever may use the Airflow UI may read this page; nobody else.
    dependencies=[Depends(requires_access_view(AccessView.WEBSITE))],
    docs_url=None,
    redoc_url=None,
    openapi_url=None,
)
templates = Jinja2Templates(directory=Path(__file__).with_name("templates"))


@app.get("/", response_class=HTMLResponse)
def page(request: Request) -> Response:
    current = status.read_snapshot()
    return templates.TemplateResponse(
        request,
        "status.html",
        {
            "status": current,
            "snapshot_path": settings.snapshot_path(),
            # From the server's root, as mounted (with any [api] base_url path in front).
            "json_path": request.url_for("status_json").path,
        },
    )


@app.get("/status.json")
def status_json() -> JSONResponse:
    current = status.read_snapshot()
    if current is None:
        return JSONResponse(
            status_code=404,
            content={
                "detail": f"no snapshot at {settings.snapshot_path()} yet: the transform DAG "
                "publishes it after its first successful build"
            },
        )
    return JSONResponse(current.as_dict())


@app.get("/docs/{name}", response_class=HTMLResponse)
def document(request: Request, name: str) -> Response:
    try:
        title, body = documents.render(name)
    except KeyError:
        raise HTTPException(
            status_code=404, detail=f"no document {name!r}; served: {', '.join(documents.DOCS)}"
        ) from None
    return templates.TemplateResponse(
        request,
        "document.html",
        {
            "title": title,
            "body": body,
            "source": f"docs/{name}",
            "status_path": request.url_for("page").path,
        },
    )


@app.exception_handler(HTTPException)
async def login_first(request: Request, exc: HTTPException) -> Response:
    """A person who opens the page without being signed in goes to Airflow's login page."""
    if exc.status_code == 401 and request.url.path != request.url_for("status_json").path:
        login = get_auth_manager().get_url_login(next_url=str(request.url))
        return RedirectResponse(login, status_code=303)
    return await http_exception_handler(request, exc)


# ----------------------------------------------------------------------------- formatting ---


def _day(value: Any) -> str:
    return "–" if value is None else f"{status.as_utc(value):%Y-%m-%d}"


def _moment(value: Any) -> str:
    return "–" if value is None else f"{status.as_utc(value):%Y-%m-%d %H:%M} UTC"


def _figure(value: float | None, *, signed: bool = False) -> str:
    """A count with thousands separators (one decimal if it has any); empty as '–'."""
    if value is None:
        return "–"
    decimals = 0 if float(value).is_integer() else 1
    return f"{value:{'+' if signed else ''},.{decimals}f}"


templates.env.filters.update(day=_day, moment=_moment, figure=_figure)
