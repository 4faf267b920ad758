"""The ``acqd`` command line: ``acqd validate PROFILE...`` (later steps add ``run``, ``worker``, ``serve``, ``ctl``).

Each subcommand is a small function taking the parsed arguments and returning the exit status; :func:`main` parses
``argv`` and dispatches. Errors a user can fix go to stderr as plain lines (``file:line: path: message``), never as
tracebacks.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``acqd`` command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    handler: Command = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
