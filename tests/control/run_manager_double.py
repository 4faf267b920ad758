"""An in-memory RunManager for the control tests: a collaborator, not the thing under test.

Profiles are tiny YAML mappings ``{camera: NAME, frames: N}``; a camera used by a live run makes ``start`` raise
ConflictError. Every call is counted so tests can prove a retried request was executed once. ``start_gate`` lets
a test hold ``start`` (a slow command) until it releases the gate.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import yaml

from daemon.errors import ConfigError, ConflictError, NotFoundError
from daemon.run_manager import ProfileInfo, ProfileSource, RunState, RunStatus

PROFILES = {
    "demo": "camera: cam0\nframes: 10\n",
    "other": "camera: cam1\nframes: 5\n",
    "broken": "camera: [not, a, name]\n",
}


class InMemoryRunManager:
    def __init__(self) -> None:
        self.calls: collections.Counter[str] = collections.Counter()
        self.start_gate = threading.Event()
        self.start_gate.set()
        self.profile_texts = dict(PROFILES)
        self._lock = threading.Lock()
        self._runs: dict[str, RunStatus] = {}
        self._cameras: dict[str, str] = {}

    def _load(self, source: ProfileSource, overrides: Mapping[str, Any]) -> dict[str, Any]:
        if source.name == "explode":
            raise RuntimeError("a bug in the manager")
        if source.name is not None:
            if source.name not in self.profile_texts:
                raise NotFoundError(f"no profile named {source.name!r}.")
            text = self.profile_texts[source.name]
        else:
            assert source.text is not None
            text = source.text
        config = yaml.safe_load(text)
        if not isinstance(config, dict) or not isinstance(config.get("camera"), str):
            raise ConfigError(f"{source.describe()}: camera must be a string.")
        for key, value in overrides.items():
            if key not in ("frames", "camera"):
                raise ConfigError(f"{source.describe()}: unknown override {key!r}.")
            config[key] = value
        return config

    def profiles(self) -> Sequence[ProfileInfo]:
        self.calls["profiles"] += 1
        return [ProfileInfo(name=name, path=f"/profiles/{name}.yaml") for name in sorted(self.profile_texts)]

    def validate(self, source: ProfileSource, overrides: Mapping[str, Any]) -> Mapping[str, Any]:
        self.calls["validate"] += 1
        config = self._load(source, overrides)
        if config.get("camera") == "unjsonable":
            return {"camera": object()}
        return {"camera": config["camera"], "frames": config.get("frames")}

    def start(self, source: ProfileSource, overrides: Mapping[str, Any]) -> str:
        self.calls["start"] += 1
        assert self.start_gate.wait(timeout=30), "the test never released start_gate"
        config = self._load(source, overrides)
        with self._lock:
            owner = self._cameras.get(config["camera"])
            if owner is not None:
                raise ConflictError(f"camera {config['camera']!r} is in use by run {owner!r}.")
            run_id = f"run-{len(self._runs) + 1}"
            self._runs[run_id] = RunStatus(
                run_id=run_id,
                state=RunState.RUNNING,
                profile=source.describe(),
                store=f"/data/{run_id}.zarr",
                started_at=time.time(),
                counts={"frames_acquired": 0, "frames_stored": 0},
                rates={"frames_per_s": 0.0},
            )
            self._cameras[config["camera"]] = run_id
        return run_id

    def _end(self, run_id: str, state: RunState) -> RunStatus:
        with self._lock:
            run = self._runs.get(run_id)
            if run is None:
                raise NotFoundError(f"no run with id {run_id!r}.")
            requested = replace(run, state=RunState.STOPPING)
            self._runs[run_id] = replace(run, state=state, finished_at=time.time())
            self._cameras = {camera: owner for camera, owner in self._cameras.items() if owner != run_id}
        return requested

    def stop(self, run_id: str) -> RunStatus:
        self.calls["stop"] += 1
        return self._end(run_id, RunState.FINISHED)

    def abort(self, run_id: str) -> RunStatus:
        self.calls["abort"] += 1
        return self._end(run_id, RunState.ABORTED)

    def runs(self) -> Sequence[RunStatus]:
        self.calls["runs"] += 1
        with self._lock:
            return list(self._runs.values())

    def reload(self) -> Mapping[str, Any]:
        self.calls["reload"] += 1
        return {"profiles": len(self.profile_texts)}
