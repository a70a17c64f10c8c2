"""`polewatch receive`: the department's reference receiver.

Runs until interrupted (or `--duration`), storing every verified record once
and acknowledging it; `--report` prints per-device counts and sequence gaps
from the store and exits.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import threading


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("receive", help="department receiver: verify, open, store and acknowledge records")
    p.add_argument("--db", required=True, help="SQLite file, sqlite:///path or postgresql://user@host/db[#schema]")
    p.add_argument("--report", action="store_true", help="print counts and sequence gaps, then exit")
    p.add_argument("--host", default="localhost")
    p.add_argument("--port", type=int, default=8883)
    p.add_argument("--ca", help="CA certificate that signed the broker")
    p.add_argument("--cert", help="receiver client certificate")
    p.add_argument("--key", help="receiver client key")
    p.add_argument("--agency", default="demo-pd")
    p.add_argument("--department-keys", help="directory of <kid>.key sealing keys and receiver.key")
    p.add_argument("--device-keys", help="directory of registered device signing keys <device>.pub")
    p.add_argument("--client-id", default="hq-receiver")
    p.add_argument("--protocol", choices=("mqtt5", "mqtt311"), default="mqtt5",
                   help="MQTT version of the department broker (mqtt311 for brokers without MQTT 5)")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.set_defaults(func=run)


def _open_store(url: str):  # -> ReceiverStore
    from firmware.cli import UserError
    from firmware.receiver import open_store

    try:
        return open_store(url)
    except (RuntimeError, ValueError) as exc:
        raise UserError(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - a database driver error, shown in one line
        raise UserError(f"cannot open {url.split('@')[-1]}: {exc}") from None


def run(args: argparse.Namespace) -> int:
    from firmware import keys as K
    from firmware.cli import UserError
    from firmware.receiver import Receiver
    from firmware.seal import Opener

    store = _open_store(args.db)
    if args.report:
        print(json.dumps(store.report(), indent=2))
        return 0
    missing = [n for n in ("ca", "cert", "key", "department_keys", "device_keys") if not getattr(args, n)]
    if missing:
        raise UserError("missing " + ", ".join("--" + m.replace("_", "-") for m in missing))
    try:
        dept = K.DepartmentKeys.load(args.department_keys)
        devices = K.load_device_public_keys(args.device_keys)
    except K.KeyFileError as exc:
        raise UserError(str(exc)) from None
    if dept.receiver_key is None:
        raise UserError(f"{args.department_keys}/receiver.key missing: acks could not be signed")
    if not devices:
        raise UserError(f"{args.device_keys}: no registered device keys (<device>.pub)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    rx = Receiver(
        host=args.host, port=args.port, ca_file=args.ca, cert_file=args.cert, key_file=args.key,
        agency=args.agency, opener=Opener(dept.private_keys, devices), store=store,
        ack_key=dept.receiver_key, client_id=args.client_id,
        device_keys_loader=lambda: K.load_device_public_keys(args.device_keys), protocol=args.protocol,
    )
    stop = threading.Event()
    # SIGTERM (systemd, or a parent whose SIGINT is ignored) stops as cleanly as Ctrl-C
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    if args.duration:
        threading.Timer(args.duration, stop.set).start()
    try:
        rx.run(stop)
    except KeyboardInterrupt:
        pass
    finally:
        print(json.dumps({"stats": rx.stats, **store.report()}, indent=2))
        store.close()
    return 0
