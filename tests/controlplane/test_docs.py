"""/docs works offline: Swagger UI's files come from the control plane itself, and the page,
its files and the OpenAPI document load without a token."""

import re

import httpx

from tests.support import ControlPlane


def test_docs_page_loads_its_assets_from_the_control_plane(controlplane: ControlPlane) -> None:
    with httpx.Client(base_url=controlplane.url, timeout=30) as c:  # no token
        page = c.get("/docs")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert not re.search(r"https?://", page.text), "the page must not load from a CDN"
        assets = re.findall(r'(?:src|href)="(/docs/assets/[^"]+)"', page.text)
        assert set(assets) == {
            "/docs/assets/swagger-ui-bundle.js",
            "/docs/assets/swagger-ui.css",
            "/docs/assets/favicon.png",
        }
        assert "persistAuthorization" in page.text and "url: '/openapi.json'" in page.text
        types = {
            "/docs/assets/swagger-ui-bundle.js": "text/javascript",
            "/docs/assets/swagger-ui.css": "text/css",
            "/docs/assets/favicon.png": "image/png",
        }
        for path, kind in types.items():
            r = c.get(path)
            assert r.status_code == 200 and r.headers["content-type"].startswith(kind), path
            assert len(r.content) > 1000, path
        # Swagger UI 5: the first to read OpenAPI 3.1, the version FastAPI publishes.
        assert "SwaggerUIBundle" in c.get("/docs/assets/swagger-ui-bundle.js").text
        assert c.get("/docs/assets/nope.js").status_code == 404
        assert c.get("/redoc").status_code == 404  # no page that would need a CDN

        schema = c.get("/openapi.json").json()
        assert schema["openapi"].startswith("3.1")
        assert schema["components"]["securitySchemes"]["bearerToken"]["scheme"] == "bearer"
        # Every API operation carries the scheme: "Authorize" + "Try it out" send the token.
        for path, item in schema["paths"].items():
            for method, operation in item.items():
                if path.startswith("/api/"):
                    assert operation.get("security") == [{"bearerToken": []}], (method, path)
        validate = schema["paths"]["/api/v1/deployments/{dep}/runs/validate"]["post"]
        assert validate["responses"]["200"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/RunConfigValidation"
        }
        # ... and the API itself still wants one.
        assert c.get("/api/v1/deployments").status_code == 401
