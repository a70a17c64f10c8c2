"""`polewatch audit ...`: verify the hash-chained audit log, or show it to an auditor.

`verify` needs no login: it reads only hashes and signatures and says
whether anything was edited, deleted or reordered (exit 0 intact, 1 not).
With `--log` and `--public-key` it checks a copy anywhere (e.g. at
headquarters). On the device each verification is itself audited.
`show` needs an account with the `audit` permission.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from firmware.commands.users import add_login_args, audit_guard, login


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("audit", help="verify or show the audit log")
    au = p.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    q = au.add_parser("verify", help="check the audit chain: any edit, deletion or reordering fails")
    q.add_argument("--log", help="audit log file (default <data_dir>/audit/audit.log)")
    q.add_argument("--public-key", help="device public key PEM (default <keys>/device.pub)")
    q.set_defaults(func=run)
    q = au.add_parser("show", help="print audit entries (needs the audit permission)")
    q.add_argument("--last", type=int, default=50)
    add_login_args(q, "audit")
    q.set_defaults(func=run)


@audit_guard
def run(args: argparse.Namespace) -> int:
    from firmware import config
    from firmware.audit import verify_log
    from firmware.cli import UserError
    from firmware.envelope import EnvelopeError, load_public_key
    from firmware.policy import paths

    if args.audit_command == "show":
        acc, s = login(args)
        s.access("audit", "show audit log", {"last": args.last})
        entries = list(acc.audit.entries())[-args.last:]
        for e in entries:
            print(json.dumps(e, sort_keys=True))
        return 0
    local = not (args.log and args.public_key)
    cfg = config.load(args.config) if local else None
    p = paths(cfg) if cfg is not None else None
    log_path = Path(args.log) if args.log else p.audit  # type: ignore[union-attr]
    key_path = Path(args.public_key) if args.public_key else p.keys / "device.pub"  # type: ignore[union-attr]
    try:
        pub = load_public_key(key_path.read_bytes())
    except OSError as exc:
        raise UserError(f"{key_path}: cannot read the device public key: {exc.strerror}") from None
    except EnvelopeError as exc:
        raise UserError(f"{key_path}: {exc}") from None
    if not log_path.exists():
        raise UserError(f"{log_path}: no audit log")
    res = verify_log(log_path, pub)
    print(json.dumps({"log": str(log_path), **res.to_json()}, indent=2))
    if local and log_path == p.audit:  # type: ignore[union-attr]
        from firmware import keys as K
        from firmware.audit import AuditError, AuditLog

        try:
            signer = K.DeviceKeys.load(p.keys).signing_key  # type: ignore[union-attr]
            AuditLog(log_path, signer).record("cli", "audit_verify", purpose="audit",
                                              detail={"ok": res.ok, "entries": res.entries})
        except (K.KeyFileError, OSError, AuditError):
            pass  # no device key, or a log too damaged to append to: the exit code says it all
    return 0 if res.ok else 1
