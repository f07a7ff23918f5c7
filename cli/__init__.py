"""The ``depot`` command. Each area adds its subcommands in its own module (``register(subparsers)``)."""
from __future__ import annotations

import argparse
import importlib
import sys

#: Modules that add subcommands; each has ``register(subparsers) -> None``.
CLI_MODULES = [
    "cli.procs",
    "cli.tasks",
    "cli.store",
    "cli.comfyui",
    "cli.maintenance",
    "cli.downloads",
    "cli.workflows",
    "cli.keys",
    "cli.trash",
    "cli.upload",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="depot", description="Model Depot: one shared, verified model store.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in CLI_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - a CLI prints the problem, not a traceback
        from cli.client import ApiError
        if isinstance(exc, ApiError):
            print(f"depot: {exc}", file=sys.stderr)
            return 1
        raise
