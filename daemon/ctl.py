"""``acqd ctl``: drive a running daemon from a shell with :class:`~daemon.ipc.client.Client`.

```
acqd ctl ping
acqd ctl start demo --set acquisition.frames=50       # prints {"run_id": ...}
acqd ctl start --file my.yaml --set storage.store=today.zarr
acqd ctl start --resume RUN_ID                       # append to an interrupted run's store (its profile)
acqd ctl status [RUN_ID] | profiles | validate NAME | stop RUN_ID | abort RUN_ID | reload
```

Results are printed as JSON on stdout (exit 0). An error answered by the daemon prints ``acqd ctl: COMMAND:
CODE: MESSAGE`` on stderr (exit 1); no answer at all (daemon down, or a CURVE key it refuses) exits 3.

Design notes: ``--set KEY=VALUE`` reads VALUE as JSON when it parses (``10``, ``true``, ``null``, ``[1,2]``,
``"10"``) and as a plain string otherwise (``today.zarr``). The endpoint is ``--endpoint``, else the control
endpoint of ``--config`` (the daemon's configuration file), else the default (``ipc://<runtime>/control.sock``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from daemon.config import default_control_endpoint, load_config, resolve
from daemon.errors import AcqdError
from daemon.ipc.client import Client, ControlTimeout, RemoteError
from daemon.ipc.curve import CurveClientSettings
from daemon.strict_yaml import DocumentError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NO_REPLY = 3
COMMANDS = ("ping", "hello", "status", "profiles", "validate", "start", "stop", "abort", "reload")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options and sub-commands of ``acqd ctl``."""
    parser.add_argument("--endpoint", help="control endpoint (default: from --config, else ipc://<runtime>/...)")
    parser.add_argument("--config", type=Path, help="the daemon's configuration file, to read its control endpoint")
    parser.add_argument("--timeout", type=float, default=5.0, metavar="S", help="seconds to wait for each reply")
    parser.add_argument("--retries", type=int, default=1, help="resends (same request id) after a timeout")
    parser.add_argument("--server-key", type=Path, help="CURVE: the daemon's public key file (server.key)")
    parser.add_argument("--client-key", type=Path, help="CURVE: this client's secret key file (NAME.key_secret)")
    commands = parser.add_subparsers(dest="ctl_command", required=True, metavar="COMMAND")
    for name in ("ping", "hello", "profiles", "reload"):
        commands.add_parser(name, help=f"send {name}")
    status = commands.add_parser("status", help="the daemon and its runs")
    status.add_argument("run_id", nargs="?", help="only this run")
    for name in ("stop", "abort"):
        commands.add_parser(name, help=f"{name} a run").add_argument("run_id")
    for name in ("validate", "start"):
        sub = commands.add_parser(name, help=f"{name} a profile (by name, or --file)")
        sub.add_argument("name", nargs="?", help="a profile of the daemon's profile folder")
        sub.add_argument("--file", type=Path, help="send this profile file inline instead of naming one")
        sub.add_argument(
            "--set", action="append", default=[], metavar="KEY=VALUE", help="override a field (repeatable)"
        )
        if name == "start":
            sub.add_argument(
                "--resume",
                metavar="RUN_ID",
                help="append to the store of this interrupted run (its journal's profile unless one is given)",
            )


def run_ctl(args: argparse.Namespace) -> int:
    """Send one command and print its result; returns the exit status."""
    try:
        endpoint = _endpoint(args)
        call_args = _call_args(args)
        curve = _curve(args)
    except (AcqdError, OSError) as exc:
        print(f"acqd ctl: {exc}", file=sys.stderr)
        return EXIT_USAGE
    command: str = args.ctl_command
    try:
        with Client(endpoint, timeout_s=args.timeout, retries=args.retries, curve=curve) as client:
            result = client.call(command, call_args)
    except RemoteError as exc:
        print(f"acqd ctl: {command}: {exc.code}: {exc.message}", file=sys.stderr)
        return EXIT_ERROR
    except ControlTimeout as exc:
        print(f"acqd ctl: {exc}", file=sys.stderr)
        return EXIT_NO_REPLY
    except AcqdError as exc:
        print(f"acqd ctl: {command}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(json.dumps(result, indent=2, sort_keys=True))
    return EXIT_OK


def _endpoint(args: argparse.Namespace) -> str:
    if args.endpoint:
        return str(args.endpoint)
    if args.config is not None:
        try:
            return resolve(load_config(args.config)).control_endpoint
        except DocumentError as exc:
            raise AcqdError(f"invalid configuration:\n{exc}") from exc
    return default_control_endpoint()


def _curve(args: argparse.Namespace) -> CurveClientSettings | None:
    if args.server_key is None and args.client_key is None:
        return None
    if args.server_key is None or args.client_key is None:
        raise AcqdError("CURVE needs both --server-key and --client-key.")
    return CurveClientSettings(server_public_key=args.server_key, client_secret_key=args.client_key)


def _call_args(args: argparse.Namespace) -> dict[str, Any]:
    command = args.ctl_command
    if command == "status":
        return {} if args.run_id is None else {"run_id": args.run_id}
    if command in ("stop", "abort"):
        return {"run_id": args.run_id}
    if command not in ("validate", "start"):
        return {}
    resume = getattr(args, "resume", None)
    call: dict[str, Any] = {} if resume is None else {"resume": resume}
    if args.name is not None and args.file is not None:
        raise AcqdError(f"{command}: give a profile name or --file FILE (exactly one).")
    if args.name is None and args.file is None:
        if resume is None:
            raise AcqdError(f"{command}: give a profile name or --file FILE (exactly one).")
    elif args.name is not None:
        call["name"] = args.name
    else:
        call["yaml"] = args.file.read_text("utf-8")
    overrides = dict(parse_assignment(text) for text in args.set)
    if overrides:
        call["overrides"] = overrides
    return call


def parse_assignment(text: str) -> tuple[str, Any]:
    """``"acquisition.frames=10"`` -> ``("acquisition.frames", 10)``; a value that is not JSON stays a string."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise AcqdError(f"--set needs KEY=VALUE (e.g. acquisition.frames=10). Got {text!r} instead.")
    try:
        parsed: Any = json.loads(value)
    except ValueError:
        parsed = value
    return key.strip(), parsed
