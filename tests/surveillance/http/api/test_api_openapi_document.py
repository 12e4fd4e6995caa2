"""The OpenAPI document passes an independent validator and says what the server sends:
problem details for every error, and how each operation is authenticated."""

from __future__ import annotations

import re

from openapi_spec_validator import validate
from support.api_support import Api

PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def test_openapi_document_is_valid_openapi(shared_api: Api) -> None:
    validate(shared_api.client.get("/openapi.json").json())


def test_every_error_is_a_problem_and_every_api_operation_is_secured(shared_api: Api) -> None:
    document = shared_api.client.get("/openapi.json").json()
    assert "bearerAuth" in document["components"]["securitySchemes"]
    assert document["components"]["securitySchemes"]["feedToken"]["in"] == "query"
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if not path.startswith("/api/"):
                continue
            assert operation["security"], (method, path)
            assert "401" in operation["responses"], (method, path)
            for code, response in operation["responses"].items():
                if code.startswith("4"):
                    assert response["content"] == PROBLEM, (method, path, code)
            names = {p["name"] for p in operation.get("parameters", [])}
            assert "authorization" not in names, (method, path)
            if "If-Match" in names:
                assert {"412", "428"} <= set(operation["responses"]), (method, path)


def test_a_malformed_request_gets_the_problem_the_document_declares(shared_api: Api) -> None:
    response = shared_api.get("/api/v1/patients", limit="many")
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert isinstance(response.json()["detail"], str)


def test_api_documentation_pages_load_nothing_from_another_host(shared_api: Api) -> None:
    """Swagger UI from the package's own assets (a hospital network may have no internet):
    every script and stylesheet the page names is a path on this server."""
    assert shared_api.client.get("/redoc").status_code == 404  # ReDoc would call redoc.ly
    for page in ("/docs",):
        html = shared_api.client.get(page).text
        assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css|png))"', html)
        assert assets, page
        for asset in assets:
            assert asset.startswith("/docs-assets/"), (page, asset)
            served = shared_api.client.get(asset)
            assert served.status_code == 200, asset
            assert len(served.content) > 1000, asset
        assert "cdn." not in html, page
        assert "fonts.googleapis" not in html, page
