"""The run's storage worker child process: spawned on the sender's private endpoint, watched until it exits.

Design notes:
- The command is ``[sys.executable, "-m", "daemon.storage.worker", "--connect", ENDPOINT, "--log-format", FMT,
  "--log-level", LEVEL]``; stdout and stderr are inherited, so its JSON log lines reach the same journal. stdin is
  /dev/null.
- The child runs in its own session (``start_new_session``): a Ctrl-C on the terminal reaches only ``acqd run``,
  which then stops gracefully and lets the worker finish the store. If the parent dies, the worker sees the
  sender go silent (liveness timeout) and closes the store on its own.
- A watcher thread waits for the exit (no polling) and calls ``on_exit(returncode)``; the run decides whether
  that exit was expected.
- :meth:`WorkerProcess.stop` is bounded and idempotent: wait, then SIGTERM, then SIGKILL.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable, Mapping

from daemon.errors import StorageError
from daemon.log import get_logger

TERMINATE_TIMEOUT_S = 5.0


def worker_command(endpoint: str, log_format: str, log_level: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "daemon.storage.worker",
        "--connect",
        endpoint,
        "--log-format",
        log_format,
        "--log-level",
        log_level,
    ]


class WorkerProcess:
    """One spawned storage worker and the thread that waits for it."""

    def __init__(
        self,
        endpoint: str,
        *,
        run_id: str,
        log_format: str,
        log_level: str,
        on_exit: Callable[[int], None],
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._log = get_logger("daemon.run_worker", run_id=run_id)
        command = worker_command(endpoint, log_format, log_level)
        try:
            self._proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                close_fds=True,
                env=None if env is None else dict(env),
            )
        except OSError as exc:
            raise StorageError(
                f"the storage worker could not be started ({command[0]} -m daemon.storage.worker): {exc}"
            ) from exc
        self.pid = self._proc.pid
        self._on_exit = on_exit
        self._exited = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="acqd-worker-watch", daemon=True)
        self._watcher.start()
        self._log.info("worker_spawned", pid=self.pid, endpoint=endpoint)

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode if self._exited.is_set() else None

    @property
    def exited(self) -> bool:
        return self._exited.is_set()

    def _watch(self) -> None:
        code = self._proc.wait()
        self._exited.set()
        self._log.info("worker_exited", pid=self.pid, exit_code=code)
        self._on_exit(code)

    def wait(self, timeout_s: float) -> int | None:
        """The exit code once the worker exited within ``timeout_s``, else None."""
        self._exited.wait(timeout_s)
        return self.returncode

    def stop(self, timeout_s: float) -> int:
        """Wait up to ``timeout_s`` for the worker to exit, then terminate it, then kill it. Returns its exit code."""
        code = self.wait(timeout_s)
        if code is None:
            self._log.warning("worker_terminated", pid=self.pid, waited_s=timeout_s)
            self._proc.terminate()
            code = self.wait(TERMINATE_TIMEOUT_S)
        if code is None:
            self._log.error("worker_killed", pid=self.pid)
            self._proc.kill()
            code = self.wait(TERMINATE_TIMEOUT_S)
        self._watcher.join(TERMINATE_TIMEOUT_S)
        return self._proc.wait() if code is None else code
