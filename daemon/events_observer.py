"""Runs on the events socket: a :class:`~daemon.run_observer.RunObserver` that publishes what runs report.

Topics (see :mod:`daemon.ipc.events`): ``state`` on every transition (the run's status JSON, as ``status``
reports it), ``metrics`` every metrics interval (``run_id`` plus the run's figures), ``summary`` once per finished
run (the canonical run summary), ``preview`` for frames, downsampled and rate-limited by the publisher.

Design notes:
- Every method runs on a run's own threads (``on_frame`` on a camera reader thread, for every frame), so each
  must be quick and must never raise into the run: publishing never blocks (PUB, ``NOBLOCK``); the preview rate
  limit is checked before any pixel is touched; a value that is not plain JSON is logged and skipped.
- Non-finite floats (a rate over zero seconds) become ``null``: event JSON is strict.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from daemon.errors import ConfigError, ProtocolError
from daemon.ipc.events import EventPublisher, Topic
from daemon.ipc.frame import Frame
from daemon.log import get_logger
from daemon.run_manager import RunStatus
from daemon.run_observer import RunObserver

log = get_logger("events_observer")

_PREVIEW_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16))


class EventsObserver(RunObserver):
    """Publishes every run's state, metrics, summary and previews on one :class:`EventPublisher`."""

    def __init__(self, publisher: EventPublisher) -> None:
        self._publisher = publisher

    def on_state(self, status: RunStatus) -> None:
        self._publish(Topic.STATE, status.to_json())

    def on_metrics(self, run_id: str, metrics: Mapping[str, Any]) -> None:
        self._publish(Topic.METRICS, {**metrics, "run_id": run_id})

    def on_summary(self, run_id: str, summary: Mapping[str, Any]) -> None:
        self._publish(Topic.SUMMARY, {**summary, "run_id": run_id})
        self._publisher.forget_run(run_id)

    def on_frame(self, run_id: str, key: str, frame: Frame) -> None:
        pixels = frame.pixels
        if pixels.dtype not in _PREVIEW_DTYPES or pixels.ndim not in (2, 3):
            return  # previews are uint8/uint16 images only
        try:
            self._publisher.preview(key, pixels, run_id=run_id, frame_id=frame.frame_id)
        except (ConfigError, ProtocolError) as exc:
            log.warning("preview_not_published", run_id=run_id, key=key, error=str(exc))

    def _publish(self, topic: Topic, data: Mapping[str, Any]) -> None:
        try:
            self._publisher.publish(topic, plain_json(data))
        except ProtocolError as exc:
            log.warning("event_not_published", topic=topic.value, error=str(exc))


def plain_json(value: Any) -> Any:
    """``value`` with non-finite floats replaced by ``None`` and tuples by lists (mappings and lists copied)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(key): plain_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain_json(item) for item in value]
    return value
