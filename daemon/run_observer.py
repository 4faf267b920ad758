"""What a run tells its host as it goes: :class:`RunObserver` (state, metrics, summary, frames for previews).

The daemon hosts runs behind its control server and subscribes to them with an observer; ``acqd run`` polls
:meth:`~daemon.run.Run.status` instead and needs none. Every method is an optional no-op: subclass and override
what you need.

Design notes:
- ``on_frame`` is called on a camera's reader thread for every frame read (stored or not): it must not block
  (copy a frame now and then for a preview, never write it anywhere slow).
- The other callbacks are called on the run's threads, outside the run's lock, so they may call
  :meth:`~daemon.run.Run.status`. An exception from a callback is logged (:func:`notify`) and never breaks the run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ParamSpec

from daemon.ipc.frame import Frame
from daemon.run_manager import RunStatus

P = ParamSpec("P")


class RunObserver:
    """Callbacks of a run; every method does nothing by default."""

    def on_state(self, status: RunStatus) -> None:
        """The run entered ``status.state``."""

    def on_metrics(self, run_id: str, metrics: Mapping[str, Any]) -> None:
        """The fields of a ``run_metrics`` event (every ``metrics_interval_s``)."""

    def on_summary(self, run_id: str, summary: Mapping[str, Any]) -> None:
        """The ``run_summary`` (once, when the run ends)."""

    def on_frame(self, run_id: str, key: str, frame: Frame) -> None:
        """A frame was read from the camera writing array ``key`` (reader thread: must not block)."""


def notify(log: Any, callback: Callable[P, None], *args: P.args, **kwargs: P.kwargs) -> None:
    """Call an observer callback; an exception is logged with its traceback, not raised."""
    try:
        callback(*args, **kwargs)
    except Exception as exc:  # an observer's bug must not break the run: logged with its traceback
        log.exception("run_observer_failed", callback=getattr(callback, "__name__", repr(callback)), error=repr(exc))
