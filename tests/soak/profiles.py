"""The soak's two runs as inline profiles: fake GenTL device ``FAKE0001`` into a local store, ``FAKE0002`` into a
staged S3 store (through the TCP proxy). Camera faults go into the profile's ``nodes:`` map.

The producer is found through ``GENICAM_GENTL64_PATH`` (a folder holding only the non-ASan .cti). Frames are
Mono16 64x64 at 100 fps; level 0 is chunked 16 frames along t, two chunks per shard.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

SIZE = 64


@dataclass(frozen=True)
class S3Target:
    bucket: str
    endpoint: str  # the proxy's
    staging_dir: str


def genicam_yaml(
    serial: str,
    store: str,
    *,
    nodes: Mapping[str, int] | None = None,
    s3: S3Target | None = None,
    frame_rate_hz: float = 100.0,
) -> str:
    """A profile acquiring until stopped from fake device ``serial`` (reconnecting when lost)."""
    node_map = json.dumps(dict(nodes or {}))
    storage_s3 = ""
    if s3 is not None:
        storage_s3 = (
            f"\n  s3: {{endpoint: {json.dumps(s3.endpoint)}, region: us-east-1, part_size: 5242880, max_attempts: 2,"
            f" connect_timeout_s: 1.0, read_timeout_s: 3.0, staging_dir: {json.dumps(s3.staging_dir)},"
            " upload_threads: 2, upload_wait_s: 30.0}"
        )
    return f"""\
# soak: {serial}
cameras:
  - name: cam{serial[-1]}
    driver: genicam
    settings:
      producers: []
      select: {{serial_number: {json.dumps(serial)}}}
      pixel_format: Mono16
      width: {SIZE}
      height: {SIZE}
      frame_rate_hz: {frame_rate_hz}
      exposure_time_us: 10.0
      timeout_s: 3.0
      on_lost: reconnect
      reconnect_attempts: 10
      reconnect_backoff_s: 0.1
      nodes: {node_map}
    dimensions:
      - {{name: t, type: time, array_size_px: 0, chunk_size_px: 16, shard_size_chunks: 2}}
      - {{name: y, type: space, array_size_px: {SIZE}, chunk_size_px: {SIZE}}}
      - {{name: x, type: space, array_size_px: {SIZE}, chunk_size_px: {SIZE}}}
acquisition:
  until_stopped: true
  queue_bytes: 8 MiB
  incomplete: drop
  metrics_interval_s: 1.0
storage:
  store: {json.dumps(store)}
  version: 3
  overwrite: true
  compression: {{codec: blosc-lz4, level: 1, shuffle: byte}}
  max_threads: 1{storage_s3}
"""


def config_yaml() -> str:
    """The daemon configuration (folders relative to it)."""
    return (
        "profiles_dir: profiles\n"
        "data_root: data\n"
        "log: {format: json, level: INFO}\n"
        "runs: {metrics_interval_s: 1.0, stop_timeout_s: 30.0}\n"
    )
