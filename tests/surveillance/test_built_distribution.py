"""The sdist and wheel built from pyproject.toml carry what the app needs outside the repo:
the licence the metadata names, the protocol files, templates, static assets, migrations."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-d", str(out)],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=120,
    )
    return out


def test_wheel_carries_the_licence_and_the_files_the_app_reads(built: Path) -> None:
    (wheel,) = built.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (metadata_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = Parser().parsestr(archive.read(metadata_name).decode())
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata["License-File"] == "LICENSE"
    licence = metadata_name.replace("METADATA", "licenses/LICENSE")
    assert licence in names
    for needed in (
        "rules/protocols/cd19-car-t-pediatric-autoimmune-1.1.yaml",
        "surveillance/http/web/templates/base.html",
        "surveillance/http/web/static/style.css",
        "surveillance/alerting/templates/assessment.overdue.html",
        "surveillance/migrations/env.py",
        "surveillance/locale/it/LC_MESSAGES/messages.mo",  # the compiled catalogs are read
    ):
        assert needed in names, needed


def test_sdist_carries_the_licence(built: Path) -> None:
    (sdist,) = built.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = archive.getnames()
    top = names[0].split("/")[0]
    assert f"{top}/LICENSE" in names
    assert f"{top}/pyproject.toml" in names


def test_unpacked_wheel_runs_outside_the_repo(built: Path, tmp_path: Path) -> None:
    """Imported from the unpacked wheel (ahead of the editable install on sys.path), in a
    folder that is not the repo, the CLI finds its bundled protocols."""
    (wheel,) = built.glob("*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = (
        "import sys, surveillance; from surveillance.cli import main; "
        "assert surveillance.__file__.startswith(sys.argv[1]), surveillance.__file__; "
        "sys.argv = ['surveillance', 'protocols', 'list']; main()"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(site)],
        cwd=elsewhere,
        env={**os.environ, "PYTHONPATH": str(site), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "cd19-car-t-pediatric-autoimmune" in result.stdout
    assert list(elsewhere.iterdir()) == []  # a read-only command writes nothing here
