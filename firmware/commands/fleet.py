"""`polewatch fleet ...`: the IT manager's remote maintenance from a desk.

    polewatch fleet keygen --out ~/.polewatch/admin
    polewatch fleet send status --device pole-001 --device pole-002 --key admin.pem --issuer it.kim
    polewatch fleet send set_config --all --patch '{"pipeline": {"min_confidence": 0.6}}' ...
    polewatch fleet send update_hotlist --device pole-001 --hotlist main-v42.json ...
    polewatch fleet status [--device D ...] [--wait 5]

Broker settings come from flags or POLEWATCH_FLEET_{HOST,PORT,CA,CERT,KEY,AGENCY}. Commands are
signed with the administrator's Ed25519 key, carry a fresh nonce and a short expiry.
"""

from __future__ import annotations

import argparse
import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

COMMAND_NAMES = ("status", "set_config", "update_hotlist", "start_update", "reboot", "rotate_keys", "snapshot",
                 "fetch_logs", "evidence_hold")


def _broker_args(q: argparse.ArgumentParser) -> None:
    env = os.environ.get
    q.add_argument("--host", default=env("POLEWATCH_FLEET_HOST", "localhost"))
    q.add_argument("--port", type=int, default=int(env("POLEWATCH_FLEET_PORT", "8883")))
    q.add_argument("--ca", default=env("POLEWATCH_FLEET_CA"), help="department CA certificate")
    q.add_argument("--cert", default=env("POLEWATCH_FLEET_CERT"), help="admin client certificate")
    q.add_argument("--cert-key", default=env("POLEWATCH_FLEET_KEY"), help="admin client TLS key")
    q.add_argument("--agency", default=env("POLEWATCH_FLEET_AGENCY", "demo-pd"))
    q.add_argument("--device", action="append", default=[], help="device id (repeat for many)")
    q.add_argument("--wait", type=float, default=10.0, help="seconds to wait for answers")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fleet", help="sign and send commands to devices; fleet status")
    fs = p.add_subparsers(dest="fleet_command", metavar="ACTION", required=True)
    q = fs.add_parser("keygen", help="create an administrator command-signing key pair")
    q.add_argument("--out", required=True, help="path prefix: PREFIX.pem (private), PREFIX.pub")
    q.set_defaults(func=run)
    q = fs.add_parser("send", help="sign and send a command to one or many devices")
    q.add_argument("command", choices=COMMAND_NAMES)
    _broker_args(q)
    q.add_argument("--all", action="store_true", help="every device with a retained status")
    q.add_argument("--key", required=True, help="administrator signing key PEM")
    q.add_argument("--issuer", required=True, help="your name, as the audit log records it")
    q.add_argument("--purpose", default="maintenance")
    q.add_argument("--case")
    q.add_argument("--args", dest="args_json", help="command arguments as a JSON object")
    q.add_argument("--patch", help="set_config: configuration changes as a JSON object")
    q.add_argument("--hotlist", help="update_hotlist: signed hot-list file")
    q.add_argument("--lifetime", type=float, default=600.0, help="seconds the command stays valid")
    q.set_defaults(func=run)
    q = fs.add_parser("status", help="status, backlog, versions and last contact per device")
    _broker_args(q)
    q.set_defaults(func=run)


def _command_args(args: argparse.Namespace) -> dict[str, Any]:
    from firmware.cli import UserError

    out: dict[str, Any] = {}
    if args.args_json:
        try:
            out = json.loads(args.args_json)
        except (ValueError, RecursionError) as exc:
            raise UserError(f"--args: not JSON: {exc}") from None
        if not isinstance(out, dict):
            raise UserError("--args: expected a JSON object")
    if args.patch:
        try:
            out["patch"] = json.loads(args.patch)
        except (ValueError, RecursionError) as exc:
            raise UserError(f"--patch: not JSON: {exc}") from None
    if args.hotlist:
        try:
            raw = Path(args.hotlist).read_bytes()
        except OSError as exc:
            raise UserError(f"--hotlist {args.hotlist}: {exc}") from None
        if raw[:2] == b"\x1f\x8b":  # gzip from `hotlist sign --gzip`
            import base64

            out["hotlist_b64"] = base64.b64encode(raw).decode()
        else:
            out["hotlist"] = raw.decode("utf-8", "replace")
    return out


def run(args: argparse.Namespace) -> int:
    from firmware.cli import UserError
    from firmware.envelope import EnvelopeError, load_private_key, private_key_pem, public_key_pem
    from firmware.fleet import Fleet, FleetError
    from firmware.remote import make_command

    if args.fleet_command == "keygen":
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        from firmware import keys as K

        key = Ed25519PrivateKey.generate()
        K.write_private(Path(args.out + ".pem"), private_key_pem(key))
        K.write_public(Path(args.out + ".pub"), public_key_pem(key))
        print(json.dumps({"private": args.out + ".pem", "public": args.out + ".pub",
                          "install_on_device": f"polewatch keys install-admin --name NAME {args.out}.pub"}))
        return 0
    for name in ("ca", "cert", "cert_key"):
        if not getattr(args, name):
            raise UserError(f"--{name.replace('_', '-')} (or POLEWATCH_FLEET_*) is required for the broker")
    try:
        fleet = Fleet(args.host, args.port, args.agency, args.ca, args.cert, args.cert_key).connect()
    except FleetError as exc:
        raise UserError(str(exc)) from None
    try:
        if args.fleet_command == "status":
            rows = fleet.observe(min(args.wait, 60.0), args.device or None)
            for row in rows:
                print(json.dumps(row))
            return 0
        try:
            key = load_private_key(Path(args.key).read_bytes())
        except (OSError, EnvelopeError) as exc:
            raise UserError(f"{args.key}: {exc}") from None
        devices = list(args.device)
        if args.all:
            devices += [r["device"] for r in fleet.observe(1.5) if r["device"] not in devices]
        if not devices:
            raise UserError("name devices with --device, or use --all")
        cargs = _command_args(args)
        signed = {d: make_command(key, args.command, d, args.agency, args.issuer, cargs,
                                  lifetime=timedelta(seconds=args.lifetime), purpose=args.purpose, case=args.case)
                  for d in devices}
        results = fleet.send(signed, args.wait)
        failed = 0
        for d, res in results.items():
            print(json.dumps({"device": d, "answered": res is not None, **(res or {})}))
            failed += res is None or not res.get("ok")
        return 1 if failed else 0
    finally:
        fleet.close()
