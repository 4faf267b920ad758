"""A real ``acqd serve`` runs an S3 profile with botocore, boto3, urllib3 and s3transfer logging at DEBUG
(``ACQD_LOG_LIBRARIES=DEBUG``, inherited by the storage worker); no line it or its worker writes, no event it
publishes and no control reply carries the access key id, the secret key or signing material.

The test cannot pass vacuously: it asserts botocore DEBUG lines were captured (including the request-sending and
signing ones, whose raw text carries the ``Authorization`` header) and that the run stored every frame.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from daemon.ipc.events import Event, Events
from daemon.log import LIBRARY_LEVEL_ENV, scrub_credentials
from tests.fixtures.s3 import REGION, SeaweedServer
from tests.serve.daemon_process import DaemonProcess, running_daemon, sim_profile, wait_for_state

pytestmark = [pytest.mark.s3, pytest.mark.slow]

FRAMES = 40
# Signing material as botocore prints it: the header value, the query forms, and its "Signature:\n<hex>" line.
_SIGNING = re.compile(
    r"Credential=[A-Za-z0-9]|Signature=[0-9a-f]|X-Amz-Signature=[0-9a-f]|X-Amz-Credential=[A-Za-z0-9]"
    r"|Authorization['\"]?\s*[:=]\s*b?['\"]?AWS4|Signature:\s*[0-9a-f]{16}"
)


def s3_profile(server: SeaweedServer, bucket: str, name: str = "s3cam") -> str:
    store = f"s3://{bucket}/{name}.zarr"
    text = sim_profile(name, frames=FRAMES, store=store)
    return text + (
        f"  s3: {{endpoint: {json.dumps(server.endpoint)}, region: {REGION}, part_size: 5242880, max_attempts: 2,"
        " connect_timeout_s: 2.0, read_timeout_s: 10.0}\n"
    )


def daemon_env(server: SeaweedServer, tmp_path: Path, secret_key: str | None = None) -> dict[str, str]:
    env = {**server.env, LIBRARY_LEVEL_ENV: "DEBUG"}
    env["AWS_CONFIG_FILE"] = str(tmp_path / "no-aws-config")
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(tmp_path / "no-aws-credentials")
    if secret_key is not None:
        env["AWS_SECRET_ACCESS_KEY"] = secret_key
    return env


def record(texts: list[str], value: Any) -> Any:
    texts.append(json.dumps(value, default=str, sort_keys=True))
    return value


def drain(events: Events, texts: list[str], seconds: float) -> list[Event]:
    """Every event arriving within ``seconds`` (recorded)."""
    seen: list[Event] = []
    deadline = time.monotonic() + seconds
    while (event := events.recv(timeout_s=max(0.01, deadline - time.monotonic()))) is not None:
        seen.append(event)
        record(texts, {"topic": event.topic, "data": event.data})
        if time.monotonic() > deadline:
            break
    return seen


def output_of(daemon: DaemonProcess) -> str:
    return daemon.log_path.read_text(errors="replace") + "\n" + daemon.stderr()


def leaks(text: str, server: SeaweedServer, *secrets: str) -> list[str]:
    """What in ``text`` gives a credential away."""
    named = {"access key id": server.access_key, "secret key": server.secret_key}
    named.update({f"secret {value[:4]}...": value for value in secrets})
    found = [name for name, value in named.items() if value in text]
    found += [f"signing material {m.group(0)!r}" for m in _SIGNING.finditer(text)]
    return found


def botocore_lines(daemon: DaemonProcess) -> list[dict[str, Any]]:
    return [e for e in daemon.logs() if e.get("event") == "library_log" and str(e.get("logger")).startswith("botocore")]


def test_an_s3_run_with_botocore_at_debug_shows_no_credentials(s3_server: SeaweedServer, tmp_path: Path) -> None:
    bucket = s3_server.make_bucket()
    texts: list[str] = []
    profile = s3_profile(s3_server, bucket)
    with running_daemon(tmp_path / "ok", env=daemon_env(s3_server, tmp_path)) as daemon:
        with daemon.subscribe() as events, daemon.client(timeout_s=20.0) as client:
            record(texts, client.ping())
            record(texts, client.validate(yaml=profile))
            run_id = client.start(yaml=profile)
            record(texts, run_id)
            run = record(texts, wait_for_state(client, run_id, timeout_s=60.0))
            record(texts, client.status())
            record(texts, client.status(run_id))
            seen = drain(events, texts, 1.0)
        assert daemon.terminate() == 0
        output = output_of(daemon)
        library = botocore_lines(daemon)
    assert run["state"] == "finished", run
    assert run["counts"]["frames_stored"] == FRAMES, run["counts"]
    assert s3_server.object_size(bucket, "s3cam.zarr/zarr.json") is not None
    assert any(event.topic == "summary" for event in seen)
    # Not vacuous: botocore spoke at DEBUG, in the daemon (preflight) and the worker, about the requests it signed.
    assert len(library) >= 50, len(library)
    messages = [str(entry["message"]) for entry in library]
    assert any(m.startswith("Sending http request") and "Authorization" in m for m in messages)
    assert any(m.startswith("Signature:") for m in messages)
    assert any("method=PUT" in m and ".acqd-preflight-" in m for m in messages)  # the daemon's preflight
    assert any("method=PUT" in m and "/s3cam.zarr/0/c/" in m for m in messages)  # the worker's chunk uploads
    assert any(entry.get("logger") == "urllib3.connectionpool" for entry in daemon.logs())
    assert leaks(output, s3_server) == []
    assert leaks("\n".join(texts), s3_server) == []


def test_a_wrong_secret_is_named_as_the_problem_but_never_shown(s3_server: SeaweedServer, tmp_path: Path) -> None:
    bucket = s3_server.make_bucket()
    wrong = "W" + s3_server.secret_key[::-1]
    texts: list[str] = []
    profile = s3_profile(s3_server, bucket, "wrong")
    with running_daemon(tmp_path / "wrong", env=daemon_env(s3_server, tmp_path, wrong)) as daemon:
        with daemon.subscribe() as events, daemon.client(timeout_s=30.0) as client:
            run_id = record(texts, client.start(yaml=profile))
            run = record(texts, wait_for_state(client, run_id, timeout_s=30.0))
            record(texts, client.status())
            drain(events, texts, 0.5)
        assert daemon.terminate() == 0
        output = output_of(daemon)
        failures = [e for e in daemon.logs() if e.get("event") == "run_start_failed"]
    assert run["state"] == "failed", run
    reply = json.dumps(run)
    assert "access denied (403): check the access key, the secret" in reply, reply
    assert f"s3://{bucket}" in reply
    assert len(failures) == 1
    assert "access denied (403)" in failures[0]["error"]
    assert botocore_lines(daemon), "botocore DEBUG lines were not captured"
    assert leaks(output, s3_server, wrong) == []
    assert leaks("\n".join(texts), s3_server, wrong) == []


def test_the_leak_detector_sees_raw_botocore_text_and_the_scrubber_hides_it(s3_server: SeaweedServer) -> None:
    """What botocore prints at DEBUG without acqd's scrubbing is flagged; scrubbed, nothing is."""
    key, signature = s3_server.access_key, "ab12" * 16
    raw = (
        "Sending http request: <AWSPreparedRequest method=PUT, headers={'Authorization': b'AWS4-HMAC-SHA256 "
        f"Credential={key}/20261123/us-east-1/s3/aws4_request, SignedHeaders=host, Signature={signature}'}}>\n"
        f"Signature:\n{signature}\n"
        f"https://b.s3/k?X-Amz-Credential={key}%2F2026&X-Amz-Signature={signature}\n"
        f"<Error><AWSAccessKeyId>{key}</AWSAccessKeyId><SignatureProvided>{signature}</SignatureProvided></Error>\n"
        f"secret in a message: {s3_server.secret_key}"
    )
    assert len(leaks(raw, s3_server)) >= 6
    assert leaks(scrub_credentials(raw, (s3_server.secret_key,)), s3_server) == []
