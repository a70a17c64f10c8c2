"""`polewatch` command line: one entry point, one module per subcommand group.

Each module listed in COMMANDS exposes `register(subparsers)`, which adds its
parser(s) and sets `func(args) -> int`. User errors (bad config, bad input)
print one clear line to stderr and exit non-zero, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from firmware import __version__
from firmware.config import ConfigError

# Subcommand modules; each owns its parsers. Order is the order in --help.
COMMANDS: list[str] = [
    "firmware.commands.run",
    "firmware.commands.simulate",
    "firmware.commands.doctor",
    "firmware.commands.illuminator",
    "firmware.commands.recognize",
    "firmware.commands.ota",
    "firmware.commands.keys",
    "firmware.commands.receive",
    "firmware.commands.hotlist",
    "firmware.commands.fleet",
    "firmware.commands.audit",
    "firmware.commands.report",
    "firmware.commands.users",
]


class UserError(Exception):
    """An error caused by input or environment; shown without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="polewatch", description="Pole-mounted licence plate reader")
    parser.add_argument("--version", action="version", version=f"polewatch {__version__}")
    parser.add_argument("--config", help="configuration file (default /etc/polewatch/polewatch.toml)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ConfigError, UserError) as exc:
        print(f"polewatch {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    # `python -m firmware.cli`: run the imported module's main so that commands raising
    # firmware.cli.UserError are caught (this file runs as __main__, a different class)
    from firmware.cli import main as _main

    sys.exit(_main())
