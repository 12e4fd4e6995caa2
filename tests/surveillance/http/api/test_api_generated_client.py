"""A client generated from the OpenAPI document by a tool nobody here wrote
(openapi-python-client) calls the API and parses what comes back: a 200, and a 404, a 412
and a 422 as ``Problem`` objects, not a crash or ``None``.

The generator pins an older typer than the app, so it lives in its own virtualenv,
``.venv-codegen`` (made by ``scripts/bootstrap``); the generated code needs only httpx,
attrs and python-dateutil, which the app's environment has.
"""

from __future__ import annotations

import datetime
import importlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.api_support import Api

REPO = Path(__file__).resolve().parents[4]
CODEGEN = REPO / ".venv-codegen" / "bin"
PACKAGE = "ltfu_generated_client"


@pytest.fixture(scope="module")
def generated(shared_api: Api, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    generator = CODEGEN / "openapi-python-client"
    if not generator.exists():
        pytest.fail(f"{generator} is missing: run scripts/bootstrap")
    work = tmp_path_factory.mktemp("client")
    spec = work / "openapi.json"
    spec.write_text(json.dumps(shared_api.client.get("/openapi.json").json()))
    command = [str(generator), "generate", "--path", str(spec), "--meta", "none"]
    result = subprocess.run(
        [*command, "--output-path", str(work / PACKAGE)],
        cwd=work,
        env={**os.environ, "PATH": f"{CODEGEN}{os.pathsep}{os.environ.get('PATH', '')}"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # Every schema made it into the client: no model was dropped as unparseable.
    assert "Warning" not in result.stdout + result.stderr, result.stdout + result.stderr
    sys.path.insert(0, str(work))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(work))
        for name in [n for n in sys.modules if n.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def _client(generated: ModuleType, shared_api: Api) -> Any:
    client = generated.AuthenticatedClient(base_url="http://testserver", token="unused")
    # The generated client accepts an httpx client: the app's TestClient, as the nurse.
    transport = TestClient(
        shared_api.client.app,
        headers={"Authorization": f"Bearer {shared_api.tokens['nurse']}"},
    )
    return client.set_httpx_client(transport)


def _api(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.api.{name}")


def test_the_generated_client_parses_a_200_and_problems(
    generated: ModuleType, shared_api: Api
) -> None:
    client = _client(generated, shared_api)
    models = importlib.import_module(f"{PACKAGE}.models")

    patients = _api("patients.list_patients_api_v1_patients_get").sync(client=client)
    assert isinstance(patients, list)

    missing = _api("patients.read_patient_api_v1_patients_study_id_get").sync(
        "NOBODY-1", client=client
    )
    assert isinstance(missing, models.Problem)
    assert missing.status == 404

    stale = _api("patients.reinfuse_api_v1_patients_study_id_infusions_post").sync(
        "NOBODY-1",
        client=client,
        body=models.InfusionCreate(infusion_date=datetime.date(2026, 1, 1)),
        if_match="not-an-etag",
    )
    assert isinstance(stale, models.Problem)
    assert stale.status == 412

    invalid = _api("patients.list_patients_api_v1_patients_get").sync(client=client, limit=0)
    assert isinstance(invalid, models.Problem)
    assert invalid.status == 422
    assert isinstance(invalid.detail, str)
    assert invalid.errors
    assert invalid.errors[0].field == "query.limit"
