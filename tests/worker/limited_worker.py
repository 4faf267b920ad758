"""The storage worker under a file-size limit: ``python -m tests.worker.limited_worker BYTES WORKER_ARGS...``.

RLIMIT_FSIZE makes writes past BYTES fail with EFBIG (SIGXFSZ is ignored, so the write returns the error instead of
killing the process): a real disk-full-like storage error that a test can produce on demand.
"""

from __future__ import annotations

import resource
import signal
import sys

from daemon.storage import worker

if __name__ == "__main__":
    limit = int(sys.argv[1])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    sys.exit(worker.main(sys.argv[2:]))
