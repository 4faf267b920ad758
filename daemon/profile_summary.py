"""What a valid profile will produce: array shapes, chunk and shard sizes, data rates and writer memory.

:func:`summarize` computes an :class:`ArraySummary` per camera from the engine's own layout math
(:func:`daemon.storage.layout.build_layout`, which also clamps chunks and shards as the run will), and
:func:`format_summary` renders it for ``acqd validate``; :func:`describe_profile` is the same as JSON (the control
plane's ``validate`` answer) and :func:`profile_memory_bytes` the memory a run of the profile holds (the daemon's
admission budget).

Design notes:
- The layout is built as the engine builds level 0 (``image_writer.level0_layout``: shards only with v3), but
  without its log lines: clamps are returned and printed.
- Sizes are uncompressed bytes (the upper bound of what lands on the store).
- Rates need the camera's frame rate: a free-running simulated camera's ``frame_period_s``, a GenICam camera's
  ``frame_rate_hz``. Without one (software or hardware trigger, unpaced), rates are left out.
- Writer memory is the chunk-group blocks the engine allocates (:func:`daemon.storage.array_writer.block_capacity`
  for the profile's storage threads), for every resolution level of a pyramid (planned as the engine plans them,
  :func:`daemon.storage.multiscale.plan_image_levels`); the downsampler's partial output frames
  (:func:`daemon.storage.pyramid.max_open_blocks`) are left out. The queue budget (``acquisition.queue_bytes``)
  and the camera's frames (a GenICam camera's ``num_buffers`` buffers of a frame each and as many frame slots; a
  simulated camera's kept frames, up to ``phase_cache_mib``) come on top, per camera.
- Shapes, chunks, shards, objects and rates are level 0's; ``levels`` lists the shape of every level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from daemon.cameras.settings import SimulatedCameraSettings
from daemon.cameras.simulated import kept_frame_bytes
from daemon.profile import Profile
from daemon.profile_cameras import CameraProfile, camera_identity
from daemon.storage.array_writer import block_capacity, plan_jobs
from daemon.storage.layout import ArrayLayout, Clamp, build_layout
from daemon.storage.multiscale import plan_image_levels
from daemon.storage.settings import DimensionType, ZarrVersion
from daemon.storage.stream import pool_workers


@dataclass(frozen=True, slots=True)
class ArraySummary:
    """What one camera's array will be. Byte counts are uncompressed; ``None`` when unknown."""

    camera: str
    output_key: str
    dimension_names: tuple[str, ...]
    dtype: str
    shape: tuple[int, ...]  # dimension 0 is the final size when the frame count is known, else 0 (grows)
    frames: int | None  # frames the run will acquire, when known
    frame_bytes: int
    chunk_shape: tuple[int, ...]
    chunk_bytes: int
    shard_shape: tuple[int, ...] | None  # None: unsharded
    shard_bytes: int | None
    chunks_per_shard: int | None
    objects: int | None  # shards (or chunks when unsharded) in the finished array, when the frame count is known
    frame_rate_hz: float | None
    mb_per_s: float | None
    objects_per_s: float | None
    writer_bytes: int  # chunk-group buffers the writers of every level hold at most
    queue_bytes: int
    clamps: tuple[Clamp, ...]
    levels: tuple[tuple[int, ...], ...] = ()  # every level's shape (level 0 first; dimension 0 as in ``shape``)
    downsampling_method: str | None = None
    camera_bytes: int = 0  # frames the camera holds: a GenICam camera's buffers, a simulated camera's kept frames

    @property
    def memory_bytes(self) -> int:
        return self.writer_bytes + self.queue_bytes + self.camera_bytes


def summarize(profile: Profile) -> list[ArraySummary]:
    return [_summarize_camera(profile, camera) for camera in profile.cameras]


def _expected_frames(profile: Profile, rate: float | None, layout: ArrayLayout) -> int | None:
    acquisition = profile.acquisition
    if acquisition.frames is not None:
        frames: int | None = acquisition.frames
    elif acquisition.duration_s is not None and rate is not None:
        frames = math.ceil(acquisition.duration_s * rate)
    else:
        frames = None
    capacity = layout.capacity
    return frames if capacity is None or frames is None else min(frames, capacity)


def _summarize_camera(profile: Profile, camera: CameraProfile) -> ArraySummary:
    array = camera.array
    dims = array.dimensions
    sharded = profile.stream.version_enum is ZarrVersion.V3 and array.sharded  # as image_writer.level0_layout
    shards = [d.shard_size_chunks for d in dims] if sharded else None
    layout, clamps = build_layout(
        [d.name for d in dims], [d.array_size_px for d in dims], [d.chunk_size_px for d in dims], shards
    )
    itemsize = array.dtype.itemsize
    rate = camera.frame_rate_hz
    frames = _expected_frames(profile, rate, layout)
    outer = layout.outer_size(frames) if frames is not None else 0
    shape = layout.shape_with_outer(outer) if layout.appendable else layout.shape
    frame_bytes = layout.shape[-2] * layout.shape[-1] * itemsize
    frames_per_row = layout.row_extent * layout.frames_per_outer
    objects = None if frames is None else -(-frames // frames_per_row) * layout.objects_per_row
    planned = plan_image_levels(array, layout)
    halved = dims[0].kind is DimensionType.SPACE
    workers = pool_workers(profile.stream)
    return ArraySummary(
        camera=camera.name,
        output_key=array.output_key,
        dimension_names=tuple(d.name for d in dims),
        dtype=array.dtype.name,
        shape=shape,
        frames=frames,
        frame_bytes=frame_bytes,
        chunk_shape=layout.chunks,
        chunk_bytes=math.prod(layout.chunks) * itemsize,
        shard_shape=layout.object_shape if layout.sharded else None,
        shard_bytes=math.prod(layout.object_shape) * itemsize if layout.sharded else None,
        chunks_per_shard=layout.chunks_per_object if layout.sharded else None,
        objects=objects,
        frame_rate_hz=rate,
        mb_per_s=None if rate is None else rate * frame_bytes / 1e6,
        objects_per_s=None if rate is None else rate * layout.objects_per_row / frames_per_row,
        writer_bytes=sum(_writer_bytes(level.layout, itemsize, workers) for level in planned),
        queue_bytes=profile.acquisition.queue_bytes,
        clamps=tuple(clamps),
        levels=tuple(_level_shape(level.layout, shape[0], n, halved) for n, level in enumerate(planned)),
        downsampling_method=None if array.method is None else array.method.value,
        camera_bytes=_camera_bytes(camera, frame_bytes),
    )


def _camera_bytes(camera: CameraProfile, frame_bytes: int) -> int:
    """The frames a camera holds while it runs: the buffers a GenICam camera announces to its producer (each at
    least a frame) and its frame slots in shared memory, or the frames a simulated camera keeps drawn
    (:func:`daemon.cameras.simulated.kept_frame_bytes`).
    """
    settings = camera.settings
    if isinstance(settings, SimulatedCameraSettings):
        return kept_frame_bytes(settings)
    return (settings.num_buffers + settings.frame_slots) * frame_bytes


def _writer_bytes(layout: ArrayLayout, itemsize: int, workers: int) -> int:
    tile_bytes = layout.chunks[-2] * layout.chunks[-1] * itemsize
    block_bytes = layout.chunks_per_group * math.prod(layout.chunks[: layout.ns]) * tile_bytes
    return block_capacity(layout, len(plan_jobs(layout, itemsize)), workers) * block_bytes


def _level_shape(layout: ArrayLayout, outer0: int, level: int, outer_halved: bool) -> tuple[int, ...]:
    """A level's shape; an append dimension the pyramid halves (space) holds ``ceil(outer0 / 2**level)``."""
    if not layout.appendable:
        return layout.shape
    return (-(-outer0 // 2**level) if outer_halved else outer0, *layout.shape[1:])


def human_bytes(count: float) -> str:
    """``268435456`` -> ``'256.0 MiB'``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(count) < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def _dims(values: tuple[int, ...]) -> str:
    return " x ".join(str(v) for v in values)


def format_summary(profile: Profile, arrays: list[ArraySummary]) -> str:
    """The text ``acqd validate`` prints for a valid profile."""
    stream = profile.stream
    compression = stream.arrays[0].compression
    codec = "no compression"
    if compression is not None:
        codec = f"{compression.codec_enum.value} level {compression.level} shuffle {compression.shuffle_enum.value}"
    acq = profile.acquisition
    stop = (
        f"{acq.frames} frames per camera"
        if acq.frames is not None
        else (f"{acq.duration_s:g} s" if acq.duration_s is not None else "until stopped")
    )
    lines = [
        f"{profile.file}: valid",
        f"  store        {stream.store_path} (Zarr v{stream.version_enum.value}, {codec}"
        f"{', overwrite' if stream.overwrite else ''})",
        f"  acquisition  {stop}; queue {human_bytes(acq.queue_bytes)} per camera, {acq.on_queue_full} when full",
    ]
    for summary in arrays:
        lines += _format_array(summary)
    total = sum(summary.memory_bytes for summary in arrays)
    lines.append(f"  memory total {human_bytes(total)} (writer buffers + queues + camera frames, all cameras)")
    return "\n".join(lines)


def _format_array(s: ArraySummary) -> list[str]:
    rate = f" at {s.frame_rate_hz:g} fps" if s.frame_rate_hz is not None else " (frame rate not fixed by the profile)"
    key = repr(s.output_key) if s.output_key else "the root group"
    names = ", ".join(s.dimension_names)
    grows = "" if s.frames is not None else " (dimension 0 grows with every frame)"
    lines = [
        f"  camera {s.camera!r}{rate} -> {key}",
        f"    shape      {_dims(s.shape)} ({names}) {s.dtype}{grows}",
        *_format_levels(s),
        f"    frame      {human_bytes(s.frame_bytes)}"
        + (f", {human_bytes(s.frames * s.frame_bytes)} in {s.frames} frames" if s.frames is not None else ""),
        f"    chunk      {_dims(s.chunk_shape)} = {human_bytes(s.chunk_bytes)}",
    ]
    if s.shard_shape is not None and s.shard_bytes is not None:
        shard = f"{_dims(s.shard_shape)} = {human_bytes(s.shard_bytes)} ({s.chunks_per_shard} chunks)"
        lines.append(f"    shard      {shard}")
    kind = "shards" if s.shard_shape is not None else "chunks"
    if s.objects is not None:
        lines.append(f"    objects    {s.objects} {kind}")
    if s.mb_per_s is not None and s.objects_per_s is not None:
        lines.append(f"    rate       {s.mb_per_s:.1f} MB/s uncompressed, {s.objects_per_s:.2f} {kind}/s")
    lines.append(
        f"    memory     {human_bytes(s.writer_bytes)} writer buffers + {human_bytes(s.queue_bytes)} queue"
        f" + {human_bytes(s.camera_bytes)} camera frames = {human_bytes(s.memory_bytes)}"
    )
    lines += [f"    note       {c.field} of {c.dimension!r} clamped from {c.requested} to {c.used}" for c in s.clamps]
    return lines


def _format_levels(s: ArraySummary) -> list[str]:
    if s.downsampling_method is None:
        return []
    shapes = ", ".join(_dims(shape) for shape in s.levels[1:]) or "none (level 0 fits one chunk)"
    return [f"    pyramid    {s.downsampling_method}, {len(s.levels)} levels; levels 1..: {shapes}"]


def profile_memory_bytes(profile: Profile) -> int:
    """Writer buffers, queue budget and camera frames of every camera of ``profile`` (as ``acqd validate`` reports
    them)."""
    return sum(array.memory_bytes for array in summarize(profile))


def describe_profile(profile: Profile) -> dict[str, Any]:
    """The JSON ``validate`` answers: store, stop condition, and per camera its identity and array."""
    acquisition = profile.acquisition
    arrays = summarize(profile)
    return {
        "file": profile.file,
        "store": profile.stream.store_path,
        "version": int(profile.stream.version_enum.value),
        "stop": {
            "frames": acquisition.frames,
            "duration_s": acquisition.duration_s,
            "until_stopped": acquisition.until_stopped,
        },
        "memory_bytes": sum(array.memory_bytes for array in arrays),
        "cameras": [
            {
                "name": camera.name,
                "driver": camera.driver,
                "identity": camera_identity(camera),
                "output_key": array.output_key,
                "dtype": array.dtype,
                "shape": list(array.shape),
                "chunk_shape": list(array.chunk_shape),
                "shard_shape": None if array.shard_shape is None else list(array.shard_shape),
                "frames": array.frames,
                "frame_rate_hz": array.frame_rate_hz,
                "mb_per_s": array.mb_per_s,
            }
            for camera, array in zip(profile.cameras, arrays, strict=True)
        ],
    }
