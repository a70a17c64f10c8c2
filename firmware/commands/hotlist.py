"""`polewatch hotlist ...`: the department signs lists; the device trusts, installs and reports them.

Department side: `keygen` (Ed25519 list-signing key), `sign` (entries from
JSON or CSV: pattern, purpose, case, expires). Device side: `trust`
(install the department's list-signing public key), `install` (needs the
`hotlist` permission), `status` (versions and counts, no plates), `check`
(match a plate; needs the `plates` permission, so a purpose and case).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from firmware.commands.users import add_login_args, audit_guard, login


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("hotlist", help="sign, trust, install and check hot lists")
    hs = p.add_subparsers(dest="hotlist_command", metavar="ACTION", required=True)
    q = hs.add_parser("keygen", help="(department) create a hot-list signing key pair")
    q.add_argument("--out", required=True, help="path prefix: writes PREFIX.pem (private) and PREFIX.pub")
    q.set_defaults(func=run)
    q = hs.add_parser("sign", help="(department) sign a list from JSON or CSV entries")
    q.add_argument("entries", help="JSON list of {pattern, purpose, case, expires} or CSV with those columns")
    q.add_argument("--key", required=True, help="department signing key PEM")
    q.add_argument("--name", default="main", help="list name")
    q.add_argument("--version", type=int, required=True, help="list version (must increase)")
    q.add_argument("--agency", default="demo-pd")
    q.add_argument("--days", type=float, default=1.0, help="list validity in days (default 1)")
    q.add_argument("-o", "--output", required=True)
    q.add_argument("--gzip", action="store_true", help="compress (large lists: the broker's message limit)")
    q.set_defaults(func=run)
    q = hs.add_parser("trust", help="trust a department hot-list signing public key")
    q.add_argument("file")
    q.add_argument("--name", required=True)
    q.set_defaults(func=run)
    q = hs.add_parser("install", help="install a signed list on this device")
    q.add_argument("file")
    add_login_args(q, "maintenance")
    q.set_defaults(func=run)
    q = hs.add_parser("status", help="installed lists: versions, expiry, counts (no plate data)")
    q.set_defaults(func=run)
    q = hs.add_parser("check", help="match plates against the installed lists")
    q.add_argument("plates", nargs="+")
    add_login_args(q, "investigation")
    q.set_defaults(func=run)


def _entries(path: Path) -> list[dict[str, Any]]:
    from firmware.cli import UserError

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read entries: {exc}") from None
    if path.suffix.lower() == ".csv":
        rows = list(csv.DictReader(io.StringIO(text)))
        need = {"pattern", "purpose", "case", "expires"}
        if rows and not need <= set(rows[0]):
            raise UserError(f"{path}: CSV needs columns {sorted(need)}")
        return [{k: r[k] for k in need} for r in rows]
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise UserError(f"{path}: not JSON: {exc}") from None
    if not isinstance(data, list):
        raise UserError(f"{path}: expected a JSON list of entries")
    return data


def _manager(args: argparse.Namespace, audit: Any = None) -> Any:
    from firmware import config
    from firmware import keys as K
    from firmware.cli import UserError
    from firmware.hotlist import HotlistManager, storage_key
    from firmware.policy import hotlist_keys, paths

    cfg = config.load(args.config)
    p = paths(cfg)
    try:
        dk = K.DeviceKeys.load(p.keys)
    except K.KeyFileError as exc:
        raise UserError(f"device keys unavailable ({exc})") from None
    h = cfg.hotlist
    m = HotlistManager(p.hotlists, storage_key(dk.signing_key), hotlist_keys(p.keys), audit,
                       h.max_edit_distance, h.partial_edit_distance, h.confusions)
    for problem in m.load():
        print(json.dumps({"warning": problem}))
    return m


@audit_guard
def run(args: argparse.Namespace) -> int:
    from firmware.access import AccessDenied
    from firmware.cli import UserError
    from firmware.envelope import EnvelopeError, key_id, load_private_key, private_key_pem, public_key_pem
    from firmware.hotlist import HotlistError, sign_hotlist, verify_hotlist

    action = args.hotlist_command
    if action == "keygen":
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        from firmware import keys as K

        key = Ed25519PrivateKey.generate()
        K.write_private(Path(args.out + ".pem"), private_key_pem(key))
        K.write_public(Path(args.out + ".pub"), public_key_pem(key))
        print(json.dumps({"private": args.out + ".pem", "public": args.out + ".pub"}))
        return 0
    if action == "sign":
        try:
            key = load_private_key(Path(args.key).read_bytes())
        except (OSError, EnvelopeError) as exc:
            raise UserError(f"{args.key}: {exc}") from None
        now = datetime.now(timezone.utc)
        data = sign_hotlist(key, args.name, args.version, args.agency, now, now + timedelta(days=args.days),
                            _entries(Path(args.entries)))
        try:  # check it as a device will, so the department sees refusals before sending
            hl = verify_hotlist(data, {key_id(key): key.public_key()}, now)
        except HotlistError as exc:
            raise UserError(str(exc)) from None
        if args.gzip:
            import gzip

            data = gzip.compress(data, 9)
        Path(args.output).write_bytes(data)
        print(json.dumps({"signed": args.output, "bytes": len(data), "list": args.name, "version": args.version,
                          "entries": len(hl.entries), "refused": [r.reason for r in hl.refused]}))
        return 0
    if action == "trust":
        from firmware import config
        from firmware import keys as K
        from firmware.policy import paths

        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        try:
            pem = Path(args.file).read_bytes()
            k = K.parse_public(pem, Ed25519PublicKey, args.file)
            if not K.KID_RE.match(args.name):
                raise UserError(f"--name {args.name!r}: letters, digits, '.', '_' or '-'")
            K.write_public(paths(config.load(args.config)).keys / "hotlist" / f"{args.name}.pub", public_key_pem(k))
        except (OSError, K.KeyFileError) as exc:
            raise UserError(str(exc)) from None
        print(json.dumps({"trusted": args.name, "fingerprint": K.fingerprint(k)}))
        return 0
    if action == "status":
        print(json.dumps(_manager(args).status(), indent=2))
        return 0
    acc, s = login(args)
    try:
        if action == "install":
            s.access("hotlist", f"install {args.file}")
            m = _manager(args, acc.audit)
            try:
                print(json.dumps(m.install(Path(args.file).read_bytes(), actor=s.name, source="cli"), indent=2))
            except OSError as exc:
                raise UserError(f"{args.file}: {exc.strerror}") from None
            except HotlistError as exc:
                raise UserError(str(exc)) from None
            return 0
        # Civil Code 1798.90.52(a)(2): the access record holds the plate numbers used to query
        s.access("plates", "hot-list check", {"query": [p[:16] for p in args.plates[:50]]})
        m = _manager(args, acc.audit)
        for plate in args.plates:
            hits = [h.to_alert() for h in m.match([(plate, 1.0)])]
            print(json.dumps({"plate": plate, "hits": hits}))
        return 0
    except AccessDenied as exc:
        raise UserError(f"access denied: {exc}") from None
