"""``/docs`` (Swagger UI) and ``/redoc`` that work without a network.

Their scripts, styles and icon are the files the ``fastapi-offline`` package ships (Swagger UI
5 and ReDoc 2, refreshed with each of its releases), served from ``/docs/assets``. The pages
carry a Content-Security-Policy that lets the browser load nothing from another origin: ReDoc's
side menu asks a CDN for Redocly's logo, and the policy turns that into no request at all.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib.resources import files
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/docs/assets"
# Same origin only; the pages' own inline start-up scripts and styles, icons as data: URLs,
# ReDoc's search worker as a blob.
POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src 'self' blob:"
)
SWAGGER_PARAMETERS: dict[str, Any] = {
    "persistAuthorization": True,  # the key given to Authorize survives a reload
    "displayOperationId": True,  # the names a generated client's functions get
    "validatorUrl": None,  # no badge from swagger.io's validator
}


def install(app: FastAPI) -> None:
    """Serve the assets and the two pages (the app is built with ``docs_url=redoc_url=None``)."""
    app.mount(ASSETS_URL, StaticFiles(directory=str(files("fastapi_offline") / "static")), name="docs-assets")
    for path, page in (("/docs", swagger_ui), ("/redoc", redoc)):
        app.add_api_route(path, _offline(app, page), include_in_schema=False)


def swagger_ui(app: FastAPI, root: str) -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url=f"{root}{app.openapi_url}",
        title=f"{app.title} - API",
        swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
        swagger_ui_parameters=SWAGGER_PARAMETERS,
    )


def redoc(app: FastAPI, root: str) -> HTMLResponse:
    return get_redoc_html(
        openapi_url=f"{root}{app.openapi_url}",
        title=f"{app.title} - API reference",
        redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
        redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
        with_google_fonts=False,
    )


def _offline(
    app: FastAPI, page: Callable[[FastAPI, str], HTMLResponse]
) -> Callable[[Request], Awaitable[HTMLResponse]]:
    async def serve(request: Request) -> HTMLResponse:
        response = page(app, request.scope.get("root_path", ""))
        response.headers["Content-Security-Policy"] = POLICY
        return response

    return serve
