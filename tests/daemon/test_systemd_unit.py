"""The shipped systemd unit: valid for systemd-analyze, hardened (exposure <= 2.5), and shaped as the daemon needs."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "acqd.service"


def directives(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith(("#", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


@pytest.fixture
def installable_unit(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at an executable that exists here (verify checks it)."""
    assert shutil.which("systemd-analyze"), "systemd-analyze is required (Debian package 'systemd')"
    text = UNIT.read_text().replace("/opt/acqd/.venv/bin/acqd", sys.executable)
    path = tmp_path / "acqd.service"
    path.write_text(text)
    return path


def test_unit_declares_notify_watchdog_restart_and_dedicated_user() -> None:
    found = directives(UNIT.read_text())
    assert found["Type"] == ["notify"]
    assert found["Restart"] == ["on-failure"]
    assert int(found["WatchdogSec"][0]) > 0
    assert found["User"] == ["acqd"]
    assert found["RuntimeDirectory"] == ["acqd"]
    assert found["StateDirectory"] == ["acqd"]
    assert found["ProtectSystem"] == ["strict"]
    assert found["CapabilityBoundingSet"] == [""]
    for flag in ("NoNewPrivileges", "PrivateTmp", "ProtectHome"):
        assert found[flag] == ["yes"], flag
    assert any(value.startswith("@system-service") for value in found["SystemCallFilter"])


def test_systemd_analyze_verify_accepts_the_unit(installable_unit: Path) -> None:
    result = subprocess.run(
        ["systemd-analyze", "verify", str(installable_unit)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "acqd.service" not in result.stderr, result.stderr


def test_security_exposure_is_at_most_2_5(installable_unit: Path) -> None:
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--no-pager", str(installable_unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    match = re.search(r"Overall exposure level for acqd\.service: ([0-9.]+)", result.stdout + result.stderr)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= 2.5
