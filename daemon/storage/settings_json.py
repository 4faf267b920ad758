"""Stream settings as JSON, and the storage worker's config: how a run tells its worker what to write.

``stream_settings_to_json(settings)`` gives a JSON object holding every field of a
:class:`~daemon.storage.settings.StreamSettings` (arrays, dimensions, compression, S3 settings, custom metadata);
``stream_settings_from_json(obj)`` builds the same settings back (exact round trip) and validates them as the
constructors do. ``worker_config``/``parse_worker_config`` wrap it in the WELCOME config of the frame stream::

    {"format": 1, "stream": <stream settings JSON>, "frame_table": true}
    {..., "resume": {"resumes": "<interrupted run id>", "interrupted_at": 1700000000.0}}   # a resumed run

Design notes:
- Fields are read off the dataclasses (``dataclasses.fields``), so a field added to a settings class travels without
  an edit here; only the nested settings types are named (:data:`_NESTED`). Enums travel as their values.
- Loading is strict: an unknown key is refused (it is a bug or a newer sender), a missing key takes the field's
  default, and plain scalar fields (str, int, float, bool, optional) must have their JSON type, read off the
  annotations. Every error is a ConfigError naming the JSON path (``stream.arrays[0].dimensions[1]``).
- S3 settings never hold credentials (boto3's chain provides them), so this JSON carries no secret.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from daemon.errors import ConfigError
from daemon.storage.s3_settings import S3Settings
from daemon.storage.settings import ArraySettings, CompressionSettings, Dimension, StreamSettings

WORKER_CONFIG_FORMAT = 1

_T = TypeVar("_T")

# field name -> (settings type, whether the JSON value is a list of them), per settings class
_NESTED: dict[type, dict[str, tuple[type, bool]]] = {
    StreamSettings: {"arrays": (ArraySettings, True), "s3": (S3Settings, False)},
    ArraySettings: {"dimensions": (Dimension, True), "compression": (CompressionSettings, False)},
    Dimension: {},
    CompressionSettings: {},
    S3Settings: {},
}
# JSON types accepted for a field annotated with these types (int for float; bool never for int)
_SCALARS: dict[Any, tuple[type, ...]] = {
    str: (str,),
    int: (int,),
    float: (int, float),
    bool: (bool,),
    type(None): (type(None),),
}
_SCALAR_FIELDS: dict[type, dict[str, tuple[type, ...]]] = {}


@dataclass(frozen=True, slots=True)
class ResumeRequest:
    """The run appends to the store of the interrupted run ``resumes`` (see :mod:`daemon.storage.append_plan`)."""

    resumes: str
    interrupted_at: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.resumes, str) or not 1 <= len(self.resumes) <= 255:
            raise ConfigError(f"resume.resumes must be a run id of 1..255 characters. Got {self.resumes!r} instead.")
        at = self.interrupted_at
        if at is not None and (isinstance(at, bool) or not isinstance(at, int | float)):
            raise ConfigError(f"resume.interrupted_at must be a number or null. Got {at!r} instead.")

    def to_json(self) -> dict[str, Any]:
        return {"resumes": self.resumes, "interrupted_at": self.interrupted_at}


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """What the storage worker needs from its run: the stream to write, whether to keep a per-frame table, and
    whether it appends to an interrupted run's store."""

    stream: StreamSettings
    frame_table: bool = True
    resume: ResumeRequest | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.stream, StreamSettings):
            raise ConfigError(f"stream must be StreamSettings. Got {type(self.stream).__name__} instead.")
        if not isinstance(self.frame_table, bool):
            raise ConfigError(f"frame_table must be true or false. Got {self.frame_table!r} instead.")
        if self.resume is not None and not isinstance(self.resume, ResumeRequest):
            raise ConfigError(f"resume must be a ResumeRequest. Got {type(self.resume).__name__} instead.")


def stream_settings_to_json(settings: StreamSettings) -> dict[str, Any]:
    """Every field of ``settings`` as a JSON object (enums as their values, nested settings as objects)."""
    if not isinstance(settings, StreamSettings):
        raise ConfigError(f"settings must be StreamSettings. Got {type(settings).__name__} instead.")
    encoded = _to_json(settings)
    assert isinstance(encoded, dict)
    return encoded


def stream_settings_from_json(obj: Mapping[str, Any], where: str = "stream") -> StreamSettings:
    """The StreamSettings ``obj`` describes (as made by :func:`stream_settings_to_json`), validated."""
    return _from_json(StreamSettings, obj, where)


def worker_config(
    settings: StreamSettings, *, frame_table: bool = True, resume: ResumeRequest | None = None
) -> dict[str, Any]:
    """The WELCOME config of a storage worker that writes ``settings`` (appending, with ``resume``)."""
    config = WorkerConfig(settings, frame_table, resume)
    stream = stream_settings_to_json(config.stream)
    doc = {"format": WORKER_CONFIG_FORMAT, "stream": stream, "frame_table": config.frame_table}
    if resume is not None:
        doc["resume"] = resume.to_json()
    return doc


def parse_worker_config(obj: Mapping[str, Any]) -> WorkerConfig:
    """The worker config in a WELCOME (see :func:`worker_config`), validated."""
    _check_object(obj, "config")
    _check_keys(obj, {"format", "stream", "frame_table", "resume"}, "config", required={"format", "stream"})
    if obj["format"] != WORKER_CONFIG_FORMAT or isinstance(obj["format"], bool):
        raise ConfigError(f"config.format must be {WORKER_CONFIG_FORMAT}. Got {obj['format']!r} instead.")
    resume = obj.get("resume")
    if resume is not None:
        _check_object(resume, "config.resume")
        _check_keys(resume, {"resumes", "interrupted_at"}, "config.resume", required={"resumes"})
        resume = ResumeRequest(resume["resumes"], resume.get("interrupted_at"))
    stream = stream_settings_from_json(obj["stream"], "config.stream")
    return WorkerConfig(stream, obj.get("frame_table", True), resume)


# -- encoding -----------------------------------------------------------------------------------------------------


def _to_json(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [_to_json(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _to_json(v) for k, v in value.items()}
    return value


# -- decoding -----------------------------------------------------------------------------------------------------


def _from_json(kind: type[_T], obj: Any, where: str) -> _T:
    _check_object(obj, where)
    nested = _NESTED[kind]
    fields = {f.name: f for f in dataclasses.fields(kind)}  # type: ignore[arg-type]
    _check_keys(obj, set(fields), where)
    kwargs: dict[str, Any] = {}
    for name, value in obj.items():
        at = f"{where}.{name}"
        if name in nested and value is not None:
            kwargs[name] = _nested(nested[name], value, at)
            continue
        accepted = _json_types(kind).get(name)
        if accepted is not None:
            _check_scalar(value, accepted, at)
        kwargs[name] = value
    return _construct(lambda: kind(**kwargs), where)


def _json_types(kind: type) -> dict[str, tuple[type, ...]]:
    """The JSON types of ``kind``'s plain scalar fields (str, int, float, bool, optional), read off its annotations:
    not every settings class checks types itself (S3Settings compares numbers, ``overwrite`` is taken as given).
    Fields of richer types (enums, nested settings) are left to the class's own validation."""
    known = _SCALAR_FIELDS.get(kind)
    if known is None:
        known = {}
        for name, hint in typing.get_type_hints(kind).items():
            members = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
            if all(m in _SCALARS for m in members):
                known[name] = tuple(t for m in members for t in _SCALARS[m])
        _SCALAR_FIELDS[kind] = known
    return known


def _nested(spec: tuple[type, bool], value: Any, where: str) -> Any:
    kind, is_list = spec
    if not is_list:
        return _from_json(kind, value, where)
    if not isinstance(value, list):
        raise ConfigError(f"{where} must be a list. Got {value!r} instead.")
    return [_from_json(kind, item, f"{where}[{index}]") for index, item in enumerate(value)]


def _construct(build: Callable[[], _T], where: str) -> _T:
    try:
        return build()
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    except (TypeError, ValueError) as exc:  # a JSON type the settings class compares or formats without checking
        raise ConfigError(f"{where} is invalid: {exc}.") from exc


def _check_object(obj: Any, where: str) -> None:
    if not isinstance(obj, Mapping) or not all(isinstance(k, str) for k in obj):
        raise ConfigError(f"{where} must be a JSON object. Got {_short(obj)} instead.")


def _check_keys(obj: Mapping[str, Any], accepted: set[str], where: str, required: set[str] | None = None) -> None:
    unknown = sorted(set(obj) - accepted)
    if unknown:
        raise ConfigError(f"{where} has unknown keys {unknown}; accepted keys are {sorted(accepted)}.")
    missing = sorted((required or set()) - set(obj))
    if missing:
        raise ConfigError(f"{where} must have the keys {missing}. Got {sorted(obj)} instead.")


def _check_scalar(value: Any, accepted: tuple[type, ...], where: str) -> None:
    if (isinstance(value, bool) and bool not in accepted) or not isinstance(value, accepted):
        names = " or ".join("null" if t is type(None) else t.__name__ for t in accepted)
        raise ConfigError(f"{where} must be {names}. Got {value!r} instead.")


def _short(value: Any) -> str:
    text = json.dumps(value, default=repr)
    return text if len(text) <= 80 else text[:77] + "..."
