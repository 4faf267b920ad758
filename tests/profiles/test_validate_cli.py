"""``acqd validate``: exit status, the summary on stdout, errors on stderr; in-process and as a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from daemon.cli import main

REPO = Path(__file__).resolve().parents[2]
PROFILES = REPO / "config" / "profiles"
BAD = Path(__file__).parent / "bad"


def test_a_valid_profile_exits_0_and_prints_what_the_run_will_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["validate", str(PROFILES / "demo.yaml"), "--data-root", str(tmp_path)])
    out, err = capsys.readouterr()
    assert (status, err) == (0, "")
    assert out.startswith(f"{PROFILES / 'demo.yaml'}: valid\n")
    assert f"store        {tmp_path / 'demo.zarr'} (Zarr v3, blosc-lz4 level 1 shuffle byte, overwrite)" in out
    assert "shard      64 x 512 x 512 = 32.0 MiB (4 chunks)" in out


def test_any_invalid_profile_makes_the_exit_status_1_and_errors_go_to_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = BAD / "chunk_size_zero.yaml"
    status = main(["validate", str(PROFILES / "demo.yaml"), str(bad), "--data-root", str(tmp_path)])
    out, err = capsys.readouterr()
    assert status == 1
    assert err == f"{bad}:18: cameras[0].dimensions[2].chunk_size_px: must be >= 1. Got 0 instead.\n"
    assert "demo.yaml: valid" in out
    assert "chunk_size_zero" not in out


def test_every_error_of_every_file_is_printed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = [BAD / "many_errors_one_pass.yaml", BAD / "missing_sections.yaml"]
    assert main(["validate", *map(str, files), "--data-root", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.splitlines()) == 6 + 3


def test_a_store_that_exists_without_overwrite_is_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "genicam" / "run.zarr").mkdir(parents=True)
    assert main(["validate", str(PROFILES / "genicam.yaml"), "--data-root", str(tmp_path)]) == 0
    assert "exists and overwrite is false" in capsys.readouterr().out


def test_the_data_root_defaults_to_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ACQD_DATA_ROOT", str(tmp_path / "root"))
    assert main(["validate", str(PROFILES / "demo.yaml")]) == 0
    assert f"store        {tmp_path / 'root' / 'demo.zarr'} " in capsys.readouterr().out


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["validate"])
    assert caught.value.code == 2
    assert "PROFILE" in capsys.readouterr().err


def run_acqd(*args: str, data_root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "ACQD_DATA_ROOT": str(data_root)}
    command = [sys.executable, "-m", "daemon.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=data_root, timeout=60, check=False)


def test_validate_runs_as_a_process(tmp_path: Path) -> None:
    good = run_acqd("validate", str(PROFILES / "demo.yaml"), str(PROFILES / "5d.yaml"), data_root=tmp_path)
    assert (good.returncode, good.stderr) == (0, "")
    assert good.stdout.count(": valid\n") == 2
    bad = run_acqd("validate", str(BAD / "python_tag.yaml"), data_root=tmp_path)
    assert bad.returncode == 1
    assert bad.stdout == ""
    assert "13: metadata.run: python tags are not allowed" in bad.stderr
    assert "Traceback" not in bad.stderr
