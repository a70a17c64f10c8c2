"""`polewatch users ...`: local accounts, roles and training records.

`bootstrap` creates the first administrator on a new device; every other
action needs an administrator's login (`--as NAME`). Passwords are read
from the terminal, or from POLEWATCH_PASSWORD (the acting user) and
POLEWATCH_NEW_PASSWORD (the account being set) for scripted provisioning.
"""

from __future__ import annotations

import argparse
import functools
import getpass
import json
import os
from datetime import date
from collections.abc import Callable
from typing import Any


def audit_guard(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """An unwritable audit log stops the command with one clear line: no access goes unrecorded."""

    @functools.wraps(fn)
    def run(args: argparse.Namespace) -> int:
        from firmware.audit import AuditError
        from firmware.cli import UserError

        try:
            return fn(args)
        except AuditError as exc:
            raise UserError(f"refused: the audit log cannot be written ({exc})") from None

    return run


def password(env: str, prompt: str) -> str:
    value = os.environ.get(env)
    if value is not None:
        return value
    try:
        return getpass.getpass(prompt)
    except (EOFError, KeyboardInterrupt):
        from firmware.cli import UserError

        raise UserError(f"no password given (set {env} or run in a terminal)") from None


def open_policy_parts(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """(config, policy paths, audit log) for a CLI run on the device."""
    from firmware import config
    from firmware import keys as K
    from firmware.audit import AuditLog
    from firmware.cli import UserError
    from firmware.policy import paths

    cfg = config.load(args.config)
    p = paths(cfg)
    try:
        dk = K.DeviceKeys.load(p.keys)
    except K.KeyFileError as exc:
        raise UserError(f"device keys unavailable ({exc}); run `polewatch keys init`") from None
    return cfg, p, AuditLog(p.audit, dk.signing_key)


def login(args: argparse.Namespace, purpose: str | None = None) -> tuple[Any, Any]:
    """(accounts, session) for `--as NAME` with the command's purpose and case."""
    from firmware.access import AccessDenied, Accounts
    from firmware.cli import UserError

    cfg, p, audit = open_policy_parts(args)
    acc = Accounts(p.access, audit, cfg.access)
    who = getattr(args, "as_user", None)
    if not who:
        raise UserError("log in with --as NAME")
    try:
        return acc, acc.login(who, password("POLEWATCH_PASSWORD", f"password for {who}: "),
                              purpose or args.purpose, getattr(args, "case", None))
    except AccessDenied as exc:
        raise UserError(f"access denied: {exc}") from None


def add_login_args(q: argparse.ArgumentParser, purpose: str) -> None:
    q.add_argument("--as", dest="as_user", metavar="NAME", help="your account")
    q.add_argument("--purpose", default=purpose, help=f"purpose of this access (default {purpose})")
    q.add_argument("--case", help="case or reference number (required for investigative purposes)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("users", help="local accounts, roles and training records")
    us = p.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    q = us.add_parser("bootstrap", help="create the first administrator (new device only)")
    q.add_argument("name")
    q.add_argument("--trained", required=True, help="training completion date YYYY-MM-DD")
    q.add_argument("--training-expires", required=True, help="training expiry date YYYY-MM-DD")
    q.set_defaults(func=run)
    q = us.add_parser("add", help="add an account")
    q.add_argument("name")
    q.add_argument("--role", required=True, choices=("administrator", "operator", "it_maintenance"))
    add_login_args(q, "maintenance")
    q.set_defaults(func=run)
    q = us.add_parser("train", help="record completed training")
    q.add_argument("name")
    q.add_argument("--completed", required=True, help="YYYY-MM-DD")
    q.add_argument("--expires", required=True, help="YYYY-MM-DD")
    q.add_argument("--course", default="ALPR policy")
    add_login_args(q, "maintenance")
    q.set_defaults(func=run)
    for name, help in (("list", "list accounts"), ("disable", "disable an account"),
                       ("unlock", "clear a lockout"), ("passwd", "set a password")):
        q = us.add_parser(name, help=help)
        if name != "list":
            q.add_argument("name")
        add_login_args(q, "maintenance")
        q.set_defaults(func=run)


def _date(text: str, what: str) -> date:
    from firmware.cli import UserError

    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UserError(f"{what}: {text!r} is not a date YYYY-MM-DD") from None


@audit_guard
def run(args: argparse.Namespace) -> int:
    from firmware.access import AccessDenied, Accounts
    from firmware.cli import UserError

    action = args.users_command
    try:
        if action == "bootstrap":
            cfg, p, audit = open_policy_parts(args)
            acc = Accounts(p.access, audit, cfg.access)
            acc.bootstrap(args.name, password("POLEWATCH_NEW_PASSWORD", f"new password for {args.name}: "),
                          _date(args.trained, "--trained"), _date(args.training_expires, "--training-expires"))
            print(json.dumps({"created": args.name, "role": "administrator"}))
            return 0
        acc, s = login(args)
        if action == "add":
            acc.add_user(s, args.name, args.role,
                         password("POLEWATCH_NEW_PASSWORD", f"new password for {args.name}: "))
            print(json.dumps({"created": args.name, "role": args.role}))
        elif action == "train":
            acc.record_training(s, args.name, _date(args.completed, "--completed"), _date(args.expires, "--expires"),
                                args.course)
            print(json.dumps({"trained": args.name, "expires": args.expires}))
        elif action == "list":
            s.access("users", "list accounts")
            print(json.dumps(acc.users(), indent=2))
        elif action == "disable":
            acc.disable(s, args.name)
        elif action == "unlock":
            acc.unlock(s, args.name)
        elif action == "passwd":
            acc.set_password(s, args.name, password("POLEWATCH_NEW_PASSWORD", f"new password for {args.name}: "))
        return 0
    except AccessDenied as exc:
        raise UserError(f"access denied: {exc}") from None
