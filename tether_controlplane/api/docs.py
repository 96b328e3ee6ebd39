"""``/docs``: Swagger UI served from the control plane itself, so it works offline.

FastAPI's own page loads Swagger UI from a CDN, and shows a blank page where the server has
no internet access. The files come from the ``fastapi-offline`` package: it ships Swagger UI
5, which reads OpenAPI 3.1 (FastAPI's version); ``swagger-ui-bundle`` still ships 4.x, which
refuses 3.1 documents ("Unable to render this definition").

None of this is under AuthMiddleware's prefix (``/api/``): the page, its files and
``/openapi.json`` load without a token; Swagger's "Authorize" then sends one with each call.
"""

import importlib.resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse

DOCS_PATH = "/docs"
ASSETS_PATH = "/docs/assets"


def swagger_ui_files() -> Path:
    """The directory holding swagger-ui-bundle.js, swagger-ui.css and favicon.png."""
    return Path(str(importlib.resources.files("fastapi_offline") / "static"))


def add_docs(app: FastAPI) -> None:
    """Serve Swagger UI at ``/docs`` and its files at ``/docs/assets``. The app must be
    created with ``docs_url=None`` (FastAPI's CDN page) and ``redoc_url=None``."""
    app.mount(ASSETS_PATH, StaticFiles(directory=swagger_ui_files()), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get(DOCS_PATH, include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - API",
            swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_PATH}/favicon.png",
            # The token entered under "Authorize" survives a reload of the page.
            swagger_ui_parameters={"persistAuthorization": True},
        )
