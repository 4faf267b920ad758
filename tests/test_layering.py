"""The layout tells the architecture: cameras and storage meet only through daemon.ipc.

Checked on the source with ``ast`` so a violation fails here, not in review.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

DAEMON = Path(__file__).resolve().parents[1] / "daemon"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            found.add("." * node.level + (node.module or ""))
    return found


def package_files(package: str) -> list[Path]:
    return sorted((DAEMON / package).rglob("*.py"))


@pytest.mark.parametrize(("package", "forbidden"), [("cameras", "daemon.storage"), ("storage", "daemon.cameras")])
def test_cameras_and_storage_do_not_import_each_other(package: str, forbidden: str) -> None:
    offenders = {
        str(path.relative_to(DAEMON)): sorted(m for m in imported_modules(path) if m.startswith(forbidden))
        for path in package_files(package)
    }
    offenders = {k: v for k, v in offenders.items() if v}
    assert offenders == {}


def test_relative_imports_do_not_climb_out_of_a_package() -> None:
    climbing = {
        str(path.relative_to(DAEMON)): sorted(m for m in imported_modules(path) if m.startswith(".."))
        for path in DAEMON.rglob("*.py")
    }
    assert {k: v for k, v in climbing.items() if v} == {}


def test_only_genicam_module_imports_harvesters() -> None:
    users = sorted(
        str(path.relative_to(DAEMON))
        for path in DAEMON.rglob("*.py")
        if any(m.split(".")[0] in ("harvesters", "genicam") for m in imported_modules(path))
    )
    assert users in ([], ["cameras/genicam.py"])


def test_test_only_oracles_are_not_imported_at_run_time() -> None:
    oracles = {"zarr", "ome_zarr_models", "tensorstore", "acquire_zarr", "pytest"}
    users = sorted(
        str(path.relative_to(DAEMON))
        for path in DAEMON.rglob("*.py")
        if any(m.split(".")[0] in oracles for m in imported_modules(path))
    )
    assert users == []
