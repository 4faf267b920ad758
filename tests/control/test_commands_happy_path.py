"""Every command's happy path, through the real client against the real server and the in-memory manager."""

from __future__ import annotations

import daemon
from daemon.ipc.client import Client
from daemon.ipc.control import PROTOCOL_VERSION, ErrorCode
from daemon.ipc.control_server import ControlServer
from tests.control.run_manager_double import InMemoryRunManager


def test_ping(client: Client) -> None:
    result = client.ping()
    assert result["pong"] is True
    assert isinstance(result["time"], float)


def test_hello_reports_versions_commands_and_codes(client: Client, server: ControlServer) -> None:
    result = client.hello(client="pytest")
    assert result["protocol"] == PROTOCOL_VERSION
    assert result["protocols"] == [PROTOCOL_VERSION]
    assert result["version"] == daemon.__version__
    assert set(result["commands"]) == {
        "ping",
        "hello",
        "status",
        "profiles",
        "validate",
        "start",
        "stop",
        "abort",
        "reload",
    }
    assert result["error_codes"] == [code.value for code in ErrorCode]
    assert result["max_request_bytes"] == server.info()["max_request_bytes"]


def test_profiles_lists_the_managers_profiles(client: Client) -> None:
    names = [profile["name"] for profile in client.profiles()]
    assert names == ["broken", "demo", "other"]


def test_validate_by_name_and_inline_with_overrides(client: Client, manager: InMemoryRunManager) -> None:
    by_name = client.validate("demo", overrides={"frames": 3})
    assert by_name == {"valid": True, "profile": "demo", "summary": {"camera": "cam0", "frames": 3}}
    inline = client.validate(yaml="camera: camX\n")
    assert inline == {"valid": True, "profile": "<inline>", "summary": {"camera": "camX", "frames": None}}
    assert manager.calls["validate"] == 2


def test_start_status_stop(client: Client) -> None:
    run_id = client.start("demo")
    status = client.status()
    assert status["daemon"]["protocol"] == PROTOCOL_VERSION
    assert [run["run_id"] for run in status["runs"]] == [run_id]
    assert status["runs"][0]["state"] == "running"
    assert set(status["runs"][0]) >= {"counts", "rates", "drops", "store", "errors"}
    assert client.stop(run_id)["state"] == "stopping"
    assert client.status(run_id)["runs"][0]["state"] == "finished"


def test_start_inline_then_abort(client: Client) -> None:
    run_id = client.start(yaml="camera: cam9\n", overrides={"frames": 1})
    assert client.abort(run_id)["run_id"] == run_id
    assert client.status(run_id)["runs"][0]["state"] == "aborted"


def test_reload(client: Client, manager: InMemoryRunManager) -> None:
    assert client.reload() == {"profiles": 3, "control": {"curve": False}}
    assert manager.calls["reload"] == 1


def test_status_counts_requests(client: Client) -> None:
    client.ping()
    requests = client.status()["daemon"]["requests"]
    assert requests["received"] == 2
    assert requests["replied"] == 1
