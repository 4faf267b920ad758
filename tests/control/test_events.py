"""The events socket: subscribers receive state/metrics/preview events; previews are downsampled and rate-limited;
malformed messages are skipped and counted by the subscriber."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import numpy as np
import pytest
import zmq

from daemon.errors import ConfigError, ProtocolError
from daemon.ipc.events import Event, EventPublisher, Events, Topic, decode_event, downsample


@pytest.fixture
def publisher() -> Iterator[EventPublisher]:
    with EventPublisher("tcp://127.0.0.1:*") as pub:
        yield pub


def first_event(pub: EventPublisher, sub: Events, topic: Topic = Topic.STATE) -> Event:
    """Publish until the subscriber has joined (PUB drops until then) and return the first event it gets."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        pub.publish(topic, {"hello": True})
        event = sub.recv(timeout_s=0.05)
        if event is not None:
            return event
    raise AssertionError("the subscriber never joined")


def test_subscriber_receives_state_and_metrics(publisher: EventPublisher) -> None:
    with Events(publisher.endpoint, topics=[Topic.STATE, Topic.METRICS], timeout_s=2) as sub:
        joined = first_event(publisher, sub)
        publisher.publish(Topic.STATE, {"run_id": "run-1", "state": "running"})
        publisher.publish("metrics", {"run_id": "run-1", "frames_per_s": 99.5})
        state = next(e for e in sub if e.data.get("run_id") == "run-1")
        metrics = sub.recv()
    assert (state.topic, state.data) == ("state", {"run_id": "run-1", "state": "running"})
    assert metrics is not None
    assert (metrics.topic, metrics.data["frames_per_s"]) == ("metrics", 99.5)
    assert joined.seq < state.seq < metrics.seq
    assert metrics.buffer is None


def test_topics_filter(publisher: EventPublisher) -> None:
    with Events(publisher.endpoint, topics=[Topic.SUMMARY], timeout_s=0.3) as sub:
        first_event(publisher, sub, Topic.SUMMARY)
        publisher.publish(Topic.METRICS, {"x": 1})
        publisher.publish(Topic.SUMMARY, {"run_id": "r"})
        received = list(sub)
    assert [(e.topic, dict(e.data)) for e in received if e.data != {"hello": True}] == [("summary", {"run_id": "r"})]


def test_preview_carries_a_downsampled_frame(publisher: EventPublisher) -> None:
    frame = np.arange(1000 * 600, dtype=np.uint16).reshape(1000, 600)
    with Events(publisher.endpoint, topics=[Topic.STATE, Topic.PREVIEW], timeout_s=2) as sub:
        first_event(publisher, sub)
        assert publisher.preview("camera0", frame, run_id="run-1", frame_id=7)
        preview = next(e for e in sub if e.topic == "preview")
    array = preview.preview_array()
    assert preview.data["step"] == 4
    assert preview.data["dtype"] == "uint16"
    assert (preview.data["key"], preview.data["frame_id"]) == ("camera0", 7)
    np.testing.assert_array_equal(array, frame[::4, ::4])


def test_previews_are_rate_limited_per_run_and_key() -> None:
    frame = np.zeros((64, 64), dtype=np.uint8)
    with EventPublisher("tcp://127.0.0.1:*", preview_max_hz=5.0) as pub:
        assert pub.preview("a", frame, run_id="r", frame_id=0)
        assert not pub.preview("a", frame, run_id="r", frame_id=1)
        assert pub.preview("b", frame, run_id="r", frame_id=1)
        time.sleep(0.21)
        assert pub.preview("a", frame, run_id="r", frame_id=2)
        counts = pub.counts()
    assert counts == {"preview": 3, "preview_rate_limited": 1}


@pytest.mark.parametrize(
    ("shape", "max_px", "step", "small"),
    [((2048, 2048), 256, 8, (256, 256)), ((100, 50), 256, 1, (100, 50)), ((300, 200, 3), 100, 3, (100, 67, 3))],
)
def test_downsample_strides_to_the_limit(
    shape: tuple[int, ...], max_px: int, step: int, small: tuple[int, ...]
) -> None:
    got, got_step = downsample(np.ones(shape, dtype=np.uint16), max_px)
    assert (got.shape, got_step) == (small, step)
    assert got.flags.c_contiguous


@pytest.mark.parametrize("pixels", [np.zeros((4, 4), np.float32), np.zeros(4, np.uint8), np.zeros((0, 4), np.uint8)])
def test_downsample_refuses_what_a_preview_cannot_carry(pixels: np.ndarray) -> None:
    with pytest.raises(ConfigError, match="preview pixels"):
        downsample(pixels, 256)


def test_publish_refuses_unknown_topics_and_non_json(publisher: EventPublisher) -> None:
    with pytest.raises(ConfigError, match="event topic must be one of"):
        publisher.publish("gossip", {})
    with pytest.raises(ProtocolError, match="not plain JSON"):
        publisher.publish(Topic.LOG, {"x": object()})


def test_subscriber_skips_and_counts_malformed_events() -> None:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.linger = 0
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    good = [b"state", json.dumps({"protocol": 1, "seq": 1, "time": 1.0, "data": {"ok": 1}}).encode()]
    junk = [
        [b"state"],
        [b"state", b"\xff"],
        [b"state", b"[]"],
        [b"state", json.dumps({"protocol": 9, "seq": 1, "time": 1.0, "data": {}}).encode()],
        [b"state", b"{}", b"x", b"y"],
    ]
    try:
        with Events(f"tcp://127.0.0.1:{port}", timeout_s=0.05) as sub:
            while sub.recv() is None:  # wait for the subscription to arrive
                pub.send_multipart(good)
            for parts in junk:
                pub.send_multipart(parts)
            pub.send_multipart(good)
            event = sub.recv(timeout_s=2)
            assert event is not None
            assert event.data == {"ok": 1}
            assert sub.malformed == len(junk)
    finally:
        pub.close()
        ctx.term()


@pytest.mark.parametrize(
    "data",
    [{"shape": [2, 2], "dtype": "float32"}, {"shape": [2, 3], "dtype": "uint8"}, {"shape": "2x2", "dtype": "uint8"}],
)
def test_malformed_preview_is_refused(data: dict[str, object]) -> None:
    event = decode_event([b"preview", json.dumps({"protocol": 1, "seq": 1, "time": 0, "data": data}).encode(), b"abcd"])
    with pytest.raises(ProtocolError):
        event.preview_array()


def test_iteration_ends_after_the_timeout(publisher: EventPublisher) -> None:
    with Events(publisher.endpoint, timeout_s=0.1) as sub:
        started = time.monotonic()
        assert list(sub) == []
        assert time.monotonic() - started < 1
