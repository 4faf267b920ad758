"""The ``acqd`` command line: ``acqd validate PROFILE...``, ``acqd run PROFILE``, ``worker``, ``serve``, ``ctl``.

Each subcommand is a small function taking the parsed arguments and returning the exit status; :func:`main` parses
``argv`` and dispatches. Errors a user can fix go to stderr as plain lines (``file:line: path: message``), never as
tracebacks.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from daemon.profile import load_profile
from daemon.profile_paths import DATA_ROOT_ENV, default_data_root
from daemon.profile_summary import format_summary, summarize
from daemon.strict_yaml import DocumentError

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2

Command = Callable[[argparse.Namespace], int]


def validate(args: argparse.Namespace) -> int:
    """Check every profile without running it; print what a valid one will produce. 0 only if all are valid."""
    data_root: Path = args.data_root or default_data_root()
    status = EXIT_OK
    for index, path in enumerate(args.profiles):
        try:
            profile = load_profile(path, data_root)
        except DocumentError as exc:
            print(str(exc), file=sys.stderr)
            status = EXIT_INVALID
            continue
        if index:
            print()
        print(format_summary(profile, summarize(profile)))
        if _refused_store(profile.stream.store_path, profile.stream.overwrite):
            print(f"  warning      {profile.stream.store_path} exists and overwrite is false: the run will refuse it")
    return status


def _refused_store(store_path: str, overwrite: bool) -> bool:
    path = Path(store_path)
    return not overwrite and path.is_absolute() and path.exists()


def serve(args: argparse.Namespace) -> int:
    """Run the daemon until SIGTERM/SIGINT (see :mod:`daemon.serve`)."""
    from daemon.serve import serve as serve_daemon  # lazy: the pipeline is imported only by the daemon

    return serve_daemon(args.config)


def ctl(args: argparse.Namespace) -> int:
    """Send one control command to a running daemon and print its JSON result (see :mod:`daemon.ctl`)."""
    from daemon.ctl import run_ctl

    return run_ctl(args)


def _add_serve_parser(commands: Any) -> None:
    sub = commands.add_parser(
        "serve",
        help="run the daemon (control and events sockets, runs; systemd Type=notify)",
        description="Run the acquisition daemon: serve the control protocol and publish events until SIGTERM/SIGINT "
        "(runs are stopped gracefully). SIGHUP re-reads the profile folder.",
    )
    sub.add_argument("--config", type=Path, default=None, help="daemon configuration YAML (default: no file)")
    sub.set_defaults(handler=serve)


def _add_ctl_parser(commands: Any) -> None:
    from daemon.ctl import add_arguments

    sub = commands.add_parser(
        "ctl",
        help="send a command to a running daemon",
        description="Send one control command to a running daemon and print its JSON result. Exit 1 when the daemon "
        "answers with an error (code and message on stderr), 3 when it does not answer.",
    )
    add_arguments(sub)
    sub.set_defaults(handler=ctl)


def worker(args: argparse.Namespace) -> int:
    """Run a storage worker that drains a sender's frame stream into its store (see :mod:`daemon.storage.worker`)."""
    from daemon.storage.worker import run_from_args

    return run_from_args(args)


def _add_worker_parser(commands: Any) -> None:
    from daemon.storage.worker_options import add_arguments

    sub = commands.add_parser(
        "worker",
        help="store a run's frames (the storage worker, for a sender bound to tcp://)",
        description="Connect to a run's frame stream and store its frames into the run's Zarr store until the stream "
        "ends. Exit 0 when every frame received was stored, 1 on a storage error, 3 when the sender is lost.",
    )
    add_arguments(sub)
    sub.set_defaults(handler=worker)


def run(args: argparse.Namespace) -> int:
    """Acquire one profile in the foreground until it ends, Ctrl-C or SIGTERM (see :mod:`daemon.run_foreground`)."""
    from daemon.run_foreground import run_command  # lazy: validate need not import the pipeline

    return run_command(args)


def _add_run_parser(commands: Any) -> None:
    sub = commands.add_parser(
        "run",
        help="acquire one profile in the foreground",
        description="Acquire one profile in the foreground: cameras -> storage worker -> store, until the profile's "
        "stop condition. Ctrl-C or SIGTERM stops gracefully (the store is finalised); a second one aborts. Exit 0 only "
        "when every frame was stored or accounted for and the store was finalised; 1 when the run failed, was aborted "
        "or could not start; 2 when the profile is invalid.",
    )
    sub.add_argument("profile", type=Path, metavar="PROFILE", help="a profile YAML file")
    sub.add_argument(
        "--data-root",
        type=Path,
        default=None,
        help=f"folder that local stores must be inside (default: ${DATA_ROOT_ENV}, else ./data)",
    )
    sub.add_argument(
        "--log-format",
        choices=["auto", "json", "console"],
        default="auto",
        help="log lines on stdout: JSON, or console lines (auto: console on a terminal)",
    )
    sub.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR (default: INFO)")
    sub.add_argument(
        "--resume",
        metavar="RUN_ID",
        default=None,
        help="append to the profile's existing store instead of creating it: RUN_ID is the run that wrote it last "
        "(in its log lines), recorded with the gap in the store's acqd.resumes; the store must match the profile",
    )
    sub.set_defaults(handler=run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="acqd", description="Acquisition daemon for microscopes.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    check = commands.add_parser(
        "validate",
        help="check profiles without running them",
        description="Check acquisition profiles without running them. For each valid profile, print the arrays the "
        "run will write, chunk and shard sizes, data rates and memory. Exit 0 only if every profile is valid.",
    )
    check.add_argument("profiles", nargs="+", metavar="PROFILE", type=Path, help="a profile YAML file")
    check.add_argument(
        "--data-root",
        type=Path,
        default=None,
        help=f"folder that local stores must be inside (default: ${DATA_ROOT_ENV}, else ./data)",
    )
    check.set_defaults(handler=validate)
    _add_serve_parser(commands)
    _add_ctl_parser(commands)
    _add_worker_parser(commands)
    _add_run_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``acqd`` command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    handler: Command = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
