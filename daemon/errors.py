"""The one exception hierarchy of acqd.

Every error acqd raises on purpose is an :class:`AcqdError`. Each subclass also inherits the builtin that a
caller would naturally catch (``ValueError`` for bad input, ``OSError`` for storage, ...), so code that does not
know acqd still handles it sensibly. Vendor exceptions (harvesters, genicam, botocore, zmq) are translated at the
edge with ``raise ... from``; they never escape a public API.
"""

from __future__ import annotations


class AcqdError(Exception):
    """Base of every error acqd raises on purpose."""


class ConfigError(AcqdError, ValueError):
    """A setting, a profile field or a command argument is invalid.

    The message names the field, the value given and what would be accepted.
    """


class StorageError(AcqdError, OSError):
    """Writing the store failed (disk full, permissions, a file where a folder should be, S3 errors)."""


class StoreExistsError(StorageError, FileExistsError):
    """The store already exists and ``overwrite`` was not requested."""


class StoreBusyError(StorageError):
    """Another process is writing the store (it holds the store's lock)."""


class StreamClosedError(StorageError):
    """An operation on a stream that was closed or failed earlier (a write error is sticky)."""


class CameraError(AcqdError, RuntimeError):
    """The camera could not be opened, configured or read."""


class CameraLost(CameraError, ConnectionError):
    """The camera stopped answering or disappeared mid-run."""


class CameraTimeout(CameraError, TimeoutError):
    """No frame arrived in the time allowed."""


class ProtocolError(AcqdError, ValueError):
    """A wire message (frame stream or control) is malformed or of an unsupported version."""


class NotFoundError(AcqdError, LookupError):
    """A named thing (a run, a profile) does not exist; the control protocol answers ``not_found``."""


class ConflictError(AcqdError, RuntimeError):
    """The request clashes with the current state (a camera already in use by a run); answered ``conflict``."""


class UnavailableError(AcqdError, RuntimeError):
    """The daemon cannot serve the request now (shutting down, busy); answered ``unavailable``."""


class PeerLost(AcqdError, ConnectionError):
    """The other end of a frame stream never answered, or stopped answering within its liveness timeout."""
