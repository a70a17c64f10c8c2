"""`polewatch report --year YYYY`: the annual usage report as HTML (inline SVG charts) and JSON.

On the device it reads the audit log (verifying the chain first) and the
usage counters; elsewhere give `--log`, `--public-key` and `--stats` (a JSON
file with reads, reads_by_month, alerts, uptime_s). Producing a report is
itself audited.
"""

from __future__ import annotations

import argparse
import getpass
import json
from pathlib import Path

from firmware.commands.users import audit_guard


def register(sub: argparse._SubParsersAction) -> None:
    q = sub.add_parser("report", help="annual usage report (HTML and JSON)")
    q.add_argument("--year", type=int, required=True)
    q.add_argument("--out", default=".", help="output directory (default: current)")
    q.add_argument("--log", help="audit log (default the device's)")
    q.add_argument("--public-key", help="device public key PEM for --log")
    q.add_argument("--stats", help="usage figures JSON (default the device's counters)")
    q.set_defaults(func=run)


@audit_guard
def run(args: argparse.Namespace) -> int:
    from firmware import config
    from firmware.audit import AuditError, AuditLog, verify_log
    from firmware.cli import UserError
    from firmware.envelope import EnvelopeError, load_public_key
    from firmware.report import UsageCounters, build, write

    if not 2000 <= args.year <= 2200:
        raise UserError(f"--year {args.year}: expected a year such as 2026")
    device = ""
    signer = None
    if args.log:
        if not args.public_key:
            raise UserError("--log needs --public-key (the device key that signed it)")
        log_path, key_path = Path(args.log), Path(args.public_key)
    else:
        from firmware import keys as K
        from firmware.policy import paths

        cfg = config.load(args.config)
        p = paths(cfg)
        log_path, key_path, device = p.audit, p.keys / "device.pub", cfg.device.id
        try:
            signer = K.DeviceKeys.load(p.keys).signing_key
        except K.KeyFileError:
            signer = None
    try:
        pub = load_public_key(key_path.read_bytes())
    except (OSError, EnvelopeError) as exc:
        raise UserError(f"{key_path}: cannot read the device public key: {exc}") from None
    check = verify_log(log_path, pub)
    if args.stats:
        try:
            stats = json.loads(Path(args.stats).read_text())
        except (OSError, ValueError, RecursionError) as exc:
            raise UserError(f"{args.stats}: {exc}") from None
        if not isinstance(stats, dict):
            raise UserError(f"{args.stats}: expected a JSON object")
    elif not args.log:
        stats = UsageCounters(p.usage).year_stats(args.year)
    else:
        raise UserError("--log needs --stats (usage figures)")
    entries = AuditLog(log_path, signer).entries() if signer else _entries(log_path)
    rep = build(args.year, entries, stats, check.to_json(), device)
    j, h = write(rep, args.out)
    if signer is not None:
        try:
            AuditLog(log_path, signer).record(f"os:{getpass.getuser()}", "report", purpose="audit",
                                              detail={"year": args.year, "json": str(j)})
        except AuditError:
            pass
    print(json.dumps({"json": str(j), "html": str(h), "audit_log_ok": check.ok}))
    return 0


def _entries(path: Path):
    with open(path, "rb") as f:
        for line in f:
            try:
                yield json.loads(line)
            except (ValueError, RecursionError):
                continue
