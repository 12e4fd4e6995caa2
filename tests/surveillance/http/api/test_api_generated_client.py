"""A client generated from the OpenAPI document by a tool nobody here wrote
(openapi-python-client) calls a real server (uvicorn on 127.0.0.1, on SQLite and on
PostgreSQL: ``live_api``) and parses what comes back: a 200 on a read and on a write with
the right If-Match, and a 404, a 412 (a stale ETag of a real patient) and a 422 as
``Problem`` objects, not a crash or ``None``.

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

import httpx
import pytest
from support.api_support import PATIENT
from support.live_api import LiveApi

REPO = Path(__file__).resolve().parents[4]
CODEGEN = REPO / ".venv-codegen" / "bin"
PACKAGE = "ltfu_generated_client"


@pytest.fixture(scope="module")
def generated(live_api: LiveApi, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    generator = CODEGEN / "openapi-python-client"
    if not generator.exists():
        pytest.fail(f"{generator} is missing: run scripts/bootstrap")
    work = tmp_path_factory.mktemp("client")
    spec = work / "openapi.json"
    spec.write_text(json.dumps(httpx.get(f"{live_api.url}/openapi.json", timeout=60).json()))
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


def _api(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.api.{name}")


@pytest.fixture
def client(generated: ModuleType, live_api: LiveApi) -> Iterator[Any]:
    """The generated client, as the nurse, on its own httpx connection to the server."""
    nurse = generated.AuthenticatedClient(base_url=live_api.url, token=live_api.tokens["nurse"])
    with nurse:
        yield nurse


def test_the_generated_client_parses_a_200_and_problems(client: Any) -> None:
    models = importlib.import_module(f"{PACKAGE}.models")
    read_patient = _api("patients.read_patient_api_v1_patients_study_id_get")
    reinfuse = _api("patients.reinfuse_api_v1_patients_study_id_infusions_post")
    study_id = PATIENT["study_id"]

    patients = _api("patients.list_patients_api_v1_patients_get").sync(client=client)
    assert isinstance(patients, list)
    assert [patient.study_id for patient in patients] == [study_id]

    missing = read_patient.sync("NOBODY-1", client=client)
    assert isinstance(missing, models.Problem)
    assert missing.status == 404

    read = read_patient.sync_detailed(study_id, client=client)
    assert read.status_code == 200
    assert isinstance(read.parsed, models.PatientPublic)
    etag = read.headers["ETag"]
    infusion = models.InfusionCreate(infusion_date=datetime.date(2026, 1, 1))

    written = reinfuse.sync_detailed(study_id, client=client, body=infusion, if_match=etag)
    assert written.status_code == 200, written.content
    assert isinstance(written.parsed, models.PatientChangeResult)
    assert written.parsed.patient.study_id == study_id
    assert written.headers["ETag"] != etag

    # The ETag read before that write is now stale: someone (we) changed the patient.
    stale = reinfuse.sync(study_id, client=client, body=infusion, if_match=etag)
    assert isinstance(stale, models.Problem)
    assert stale.status == 412
    reread = read_patient.sync_detailed(study_id, client=client)
    assert reread.headers["ETag"] == written.headers["ETag"]

    invalid = _api("patients.list_patients_api_v1_patients_get").sync(client=client, limit=0)
    assert isinstance(invalid, models.Problem)
    assert invalid.status == 422
    assert isinstance(invalid.detail, str)
    assert invalid.errors
    assert invalid.errors[0].field == "query.limit"
