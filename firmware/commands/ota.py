"""`polewatch ota ...`: signed updates.

IT manager (release repository, run on a workstation, root keys offline):
    init, bundle, publish, timestamp, rotate, revoke, releases, serve
Device (run by polewatch-ota*.service units or by hand):
    check, install, status, recover, daemon, factory-install
Device commands print JSON; see docs/ota.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from pathlib import Path

from firmware import config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ota", help="signed over-the-air updates (repository tooling and device updater)")
    ota = p.add_subparsers(dest="ota_command", metavar="ACTION", required=True)

    def repo_args(q: argparse.ArgumentParser, keys: bool = True) -> None:
        q.add_argument("--repo", type=Path, required=True, help="release repository directory")
        if keys:
            q.add_argument("--keys", type=Path, action="append", required=True,
                           help="directory of private keys (repeat for keys kept on separate media)")

    q = ota.add_parser("init", help="generate root/targets/snapshot/timestamp keys and a new repository")
    q.add_argument("--repo", type=Path, required=True)
    q.add_argument("--keys", type=Path, required=True, help="directory the new private keys are written to")
    q.add_argument("--root-keys", type=int, default=3)
    q.add_argument("--root-threshold", type=int, default=2, help="signatures a root change needs (2 recommended)")
    q.set_defaults(func=cmd_init)

    q = ota.add_parser("bundle", help="build a release bundle (wheels + models + manifest)")
    q.add_argument("--version", required=True)
    q.add_argument("--wheel", type=Path, action="append", default=[], help="application wheel (repeatable)")
    q.add_argument("--model", type=Path, action="append", default=[], help="model file (repeatable)")
    q.add_argument("--hardware", action="append", default=None, help="board this runs on (repeatable; default any)")
    q.add_argument("--min-from", default=None, help="lowest installed version this release can upgrade from")
    q.add_argument("--entry", default="firmware.cli", help="module the slot launcher runs")
    q.add_argument("-o", "--output", type=Path, required=True)
    q.set_defaults(func=cmd_bundle)

    q = ota.add_parser("publish", help="sign a bundle into the repository (targets, snapshot, timestamp)")
    repo_args(q)
    q.add_argument("bundle", type=Path)
    q.set_defaults(func=cmd_publish)

    q = ota.add_parser("timestamp", help="refresh timestamp.json (run daily; devices refuse expired metadata)")
    repo_args(q)
    q.add_argument("--expires-days", type=float, default=None)
    q.set_defaults(func=cmd_timestamp)

    q = ota.add_parser("rotate", help="replace all keys of a role with new ones")
    repo_args(q)
    q.add_argument("--role", required=True, choices=["root", "targets", "snapshot", "timestamp"])
    q.add_argument("--new-keys", type=Path, required=True, help="directory the new private keys are written to")
    q.set_defaults(func=cmd_rotate)

    q = ota.add_parser("revoke", help="remove a compromised key from every role (replacing it if needed)")
    repo_args(q)
    q.add_argument("--keyid", required=True)
    q.add_argument("--new-keys", type=Path, required=True)
    q.set_defaults(func=cmd_revoke)

    q = ota.add_parser("releases", help="list the releases the repository offers")
    repo_args(q, keys=False)
    q.set_defaults(func=cmd_releases)

    q = ota.add_parser("serve", help="serve a repository over HTTP with Range support (bench/lab only)")
    repo_args(q, keys=False)
    q.add_argument("--host", default="127.0.0.1")
    q.add_argument("--port", type=int, default=8080)
    q.set_defaults(func=cmd_serve)

    q = ota.add_parser("check", help="device: refresh signed metadata, show the release that would be installed")
    q.set_defaults(func=cmd_check)
    q = ota.add_parser("install", help="device: install the newest release (or --version), health-gated")
    q.add_argument("--version", default=None)
    q.add_argument("--request", action="store_true",
                   help="serve the application's pending request (polewatch-ota-install.service)")
    q.set_defaults(func=cmd_install)
    q = ota.add_parser("status", help="device: slots, versions, last result, journal")
    q.add_argument("--verify", action="store_true", help="re-hash both slots against their records")
    q.set_defaults(func=cmd_status)
    q = ota.add_parser("recover", help="device: after power loss, return to a startable release (boot unit)")
    q.set_defaults(func=cmd_recover)
    q = ota.add_parser("daemon", help="device: check and install on the configured schedule")
    q.set_defaults(func=cmd_daemon)
    q = ota.add_parser("factory-install", help="device/image build: install a local bundle as the first release")
    q.add_argument("bundle", type=Path)
    q.set_defaults(func=cmd_factory_install)


def _user_errors(fn):
    """Turn OTA errors into a one-line UserError (no traceback)."""
    def wrapper(args: argparse.Namespace) -> int:
        from firmware.cli import UserError
        from ota.errors import OtaError
        try:
            return fn(args)
        except OtaError as exc:
            raise UserError(str(exc)) from None
        except OSError as exc:
            raise UserError(f"{getattr(exc, 'filename', '') or ''} {exc.strerror or exc}".strip()) from None
    wrapper.__name__ = fn.__name__
    return wrapper


def _print(obj) -> None:
    print(json.dumps(obj, indent=2, sort_keys=True, default=str))


# ---- IT manager
@_user_errors
def cmd_init(args) -> int:
    from ota.repository import ReleaseRepository
    repo = ReleaseRepository.create(args.repo, args.keys, root_keys=args.root_keys, root_threshold=args.root_threshold)
    _print({"repository": str(args.repo), "keys": repo.key_roles(),
            "device_trusted_root": str(args.repo / "metadata" / "1.root.json")})
    print("Copy the root keys to offline media and delete them here; ship metadata/1.root.json in the image "
          "as /etc/polewatch/ota-root.json.", file=sys.stderr)
    return 0


@_user_errors
def cmd_bundle(args) -> int:
    from ota.manifest import build_bundle
    m = build_bundle(args.output, args.version, args.wheel, args.model, hardware=args.hardware,
                     min_from=args.min_from, entry=args.entry)
    _print({"bundle": str(args.output), "version": m.version, "kind": m.kind, "files": len(m.files)})
    return 0


def _repo(args):
    from ota.repository import ReleaseRepository
    return ReleaseRepository(args.repo, getattr(args, "keys", []) or [])


@_user_errors
def cmd_publish(args) -> int:
    _print(_repo(args).publish(args.bundle))
    return 0


@_user_errors
def cmd_timestamp(args) -> int:
    from ota.repository import utc_expiry
    exp = utc_expiry(args.expires_days) if args.expires_days else None
    _print({"timestamp_version": _repo(args).refresh_timestamp(expires=exp)})
    return 0


@_user_errors
def cmd_rotate(args) -> int:
    _print({"role": args.role, "new_keyids": _repo(args).rotate(args.role, args.new_keys)})
    return 0


@_user_errors
def cmd_revoke(args) -> int:
    _print({"revoked": args.keyid, "replacement_keyids": _repo(args).revoke(args.keyid, args.new_keys)})
    return 0


@_user_errors
def cmd_releases(args) -> int:
    _print(_repo(args).releases())
    return 0


@_user_errors
def cmd_serve(args) -> int:
    from ota.devserver import RepositoryServer
    srv = RepositoryServer(args.repo, args.host, args.port, verbose=True)
    print(f"serving {args.repo} at {srv.url}", file=sys.stderr)
    try:
        srv.httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


# ---- device
def _updater(args, **kw):
    from firmware.cli import UserError
    from ota.updater import Updater
    cfg = config.load(args.config)
    if not cfg.ota.repository_url and args.ota_command not in ("status", "recover", "factory-install"):
        raise UserError("ota.repository_url is not set in the configuration")
    return Updater.from_config(cfg, repository_url=cfg.ota.repository_url or "file:///nonexistent", **kw), cfg


def _stderr_progress(phase: str, done: int, total: int) -> None:
    print(json.dumps({"phase": phase, "done": done, "total": total}), file=sys.stderr, flush=True)


@_user_errors
def cmd_check(args) -> int:
    upd, _ = _updater(args)
    _print(upd.check().to_dict())
    return 0


@_user_errors
def cmd_install(args) -> int:
    upd, _ = _updater(args, activation="inline")
    if args.request:
        res = upd.serve_request()
        if res is None:
            _print({"request": None})
            return 0
    else:
        res = upd.apply(args.version, progress=_stderr_progress)
    _print(res.to_dict())
    return 0 if res.ok else 1


@_user_errors
def cmd_status(args) -> int:
    upd, _ = _updater(args)
    st = upd.status()
    if args.verify:
        st["verified"] = {s: upd.slots.verify_slot(s) for s in ("a", "b")}
    st["events"] = upd.events(10)
    _print(st)
    return 0


@_user_errors
def cmd_recover(args) -> int:
    upd, _ = _updater(args)
    _print({"recovery": upd.recover(), "current": upd.slots.current_version()})
    return 0


@_user_errors
def cmd_daemon(args) -> int:
    from firmware.cli import UserError
    upd, cfg = _updater(args, activation="inline")
    if not cfg.ota.enabled:
        raise UserError("ota.enabled is false in the configuration")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    upd.run_schedule(cfg.ota.check_interval_s, cfg.ota.check_jitter_s, stop)
    return 0


@_user_errors
def cmd_factory_install(args) -> int:
    upd, _ = _updater(args)
    t0 = time.monotonic()
    m = upd.slots.factory_install(args.bundle)
    _print({"installed": m.version, "slot": upd.slots.current_slot(), "seconds": round(time.monotonic() - t0, 3)})
    return 0
