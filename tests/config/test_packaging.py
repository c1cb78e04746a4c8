"""The wheel a deployment installs carries every app whole."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
PACKAGES = [
    "config",
    "crm",
    "campaigns",
    "messaging",
    "vendors",
    "automations",
    "api",
    "bench",
]


def source_files() -> set[str]:
    return {
        path.relative_to(PROJECT).as_posix()
        for package in PACKAGES
        for path in (PROJECT / package).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_the_wheel_holds_every_app_with_its_templates_static_files_and_migrations(
    tmp_path,
):
    # given a copy of the project's source (no build left from an earlier run)
    source = tmp_path / "source"
    source.mkdir()
    for name in ["pyproject.toml", "README.md"]:
        shutil.copy(PROJECT / name, source / name)
    for package in PACKAGES:
        shutil.copytree(
            PROJECT / package,
            source / package,
            ignore=shutil.ignore_patterns("__pycache__"),
        )

    # when its wheel is built
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps"]
        + ["-w", str(tmp_path / "dist"), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = (tmp_path / "dist").glob("*.whl")

    # then every file of every app is in it: code, templates, static, migrations
    with zipfile.ZipFile(wheel) as archive:
        packed = set(archive.namelist())
    missing = sorted(source_files() - packed)
    assert not missing
    assert "api/migrations/0001_initial.py" in packed
    assert "automations/templates/admin/automations/index.html" in packed
    assert "campaigns/static/campaigns/admin/campaign.css" in packed
