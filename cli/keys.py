"""``depot keys``: show the upstream API keys (masked), ``depot keys set civitai|huggingface [VALUE]`` (checked
against the service before it is saved; without VALUE it is read from the terminal or stdin, kept out of the
shell's history), ``depot keys clear NAME``."""
from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from cli.client import ApiClient

NAMES = ("civitai", "huggingface")


def register(sub: Any) -> None:
    p = sub.add_parser("keys", help="the Civitai and Hugging Face API keys the server downloads with")
    inner = p.add_subparsers(dest="keys_cmd")
    s = inner.add_parser("set", help="save a key (checked against the service first)")
    s.add_argument("name", choices=NAMES)
    s.add_argument("value", nargs="?", help="the key; omitted: asked for without echo, or read from stdin")
    c = inner.add_parser("clear", help="remove a key")
    c.add_argument("name", choices=NAMES)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    api = ApiClient()
    if args.keys_cmd == "set":
        value = args.value or _read_key(args.name)
        if not value:
            print("depot keys set: no key given", file=sys.stderr)
            return 2
        answer = api.request("PUT", f"/settings/keys/{args.name}", json={"value": value})
        print(f"{args.name}: {answer['value']} saved")
        if answer.get("check"):
            print(answer["check"]["message"], file=sys.stderr)
        return 0
    if args.keys_cmd == "clear":
        api.request("PUT", f"/settings/keys/{args.name}", json={"value": None})
        print(f"{args.name}: cleared")
        return 0
    for name, masked in api.get("/settings/keys").items():
        print(f"{name:<12} {masked or '(not set)'}")
    return 0


def _read_key(name: str) -> str:
    if sys.stdin.isatty():
        return getpass.getpass(f"{name} API key: ").strip()
    return sys.stdin.readline().strip()
