"""`polewatch keys ...`: provision the device's keys and show fingerprints.

Device side: `init` (signing key, TLS key, CSR), `install-cert`, `install-ca`,
`install-department` (sealing key with a key id; rotation keeps older ids),
`install-receiver` / `install-admin` (public keys), `show`. Department side:
`department-init` makes a sealing key pair (new key id each time) and the
receiver's ack-signing key. Private key files are 0600.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from firmware import config


def _dir(args: argparse.Namespace) -> Path:
    if args.dir:
        return Path(args.dir)
    cfg = config.load(args.config)
    return cfg.keys.dir or cfg.device.data_dir / "keys"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("keys", help="device keys, certificate and department keys")
    ks = p.add_subparsers(dest="keys_command", metavar="ACTION", required=True)

    def add(name: str, help: str, file_arg: bool = False) -> argparse.ArgumentParser:
        q = ks.add_parser(name, help=help)
        q.add_argument("--dir", help="key directory (default: keys.dir or <data_dir>/keys)")
        if file_arg:
            q.add_argument("file", help="PEM file to install")
        q.set_defaults(func=run)
        return q

    q = add("init", "create the device signing key, TLS key and certificate signing request")
    q.add_argument("--device", help="device id for the CSR (default: device.id from the config)")
    q.add_argument("--agency", help="agency for the CSR (default: device.agency)")
    q.add_argument("--force", action="store_true", help="replace existing keys")
    add("install-cert", "install the department-signed TLS certificate", True)
    add("install-ca", "install the department CA certificate", True)
    q = add("install-department", "install a department sealing public key (rotation: new key id)", True)
    q.add_argument("--kid", help="key id (default: derived from the key)")
    q.add_argument("--no-current", action="store_true", help="install without sealing new records to it")
    q = add("install-receiver", "install the receiver's ack-signing public key", True)
    q.add_argument("--name", default="hq")
    q = add("install-admin", "install an administrator's public key", True)
    q.add_argument("--name", required=True)
    add("show", "show key fingerprints")
    q = add("department-init", "(department side) create a sealing key pair and the receiver key")
    q.add_argument("--kid", help="key id (default: derived from the key)")


def run(args: argparse.Namespace) -> int:
    from firmware import keys as K
    from firmware.cli import UserError

    try:
        d = _dir(args)
        cmd = args.keys_command
        if cmd == "department-init":
            kid = K.DepartmentKeys.generate(d, args.kid)
            dk = K.DepartmentKeys.load(d)
            out = {"dir": str(d), "kid": kid, "sealing_public_key": str(d / f"{kid}.pub"),
                   "fingerprint": K.fingerprint(dk.private_keys[kid].public_key())}
            if dk.receiver_key:
                out["receiver_public_key"] = str(d / "receiver.pub")
                out["receiver_fingerprint"] = K.fingerprint(dk.receiver_key.public_key())
            print(json.dumps(out, indent=2))
            return 0
        if cmd == "init":
            device, agency = args.device, args.agency
            if not device or not agency:
                cfg = config.load(args.config)
                device, agency = device or cfg.device.id, agency or cfg.device.agency
            csr = K.init_device(d, device, agency, force=args.force)
            print(json.dumps({"csr": str(csr), "device_public_key": str(d / "device.pub"),
                              **K.DeviceKeys.load(d).fingerprints()}, indent=2))
            return 0
        if cmd != "show":
            data = _read(Path(args.file))
        if cmd == "install-cert":
            cert = K.install_cert(d, data)
            print(f"installed certificate for {cert.subject.rfc4514_string()}")
        elif cmd == "install-ca":
            K.install_ca(d, data)
            print("installed department CA")
        elif cmd == "install-department":
            kid = K.install_department_key(d, data, args.kid, make_current=not args.no_current)
            print(f"installed department key {kid}" + ("" if args.no_current else " (current)"))
        elif cmd == "install-receiver":
            K.install_named_public(d, "receiver", args.name, data)
            print(f"installed receiver key {args.name}")
        elif cmd == "install-admin":
            K.install_named_public(d, "admin", args.name, data)
            print(f"installed admin key {args.name}")
        elif cmd == "show":
            print(json.dumps(K.DeviceKeys.load(d).fingerprints(), indent=2))
    except K.KeyFileError as exc:
        raise UserError(str(exc)) from None
    return 0


def _read(path: Path) -> bytes:
    from firmware.cli import UserError

    try:
        return path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror or exc}") from None
