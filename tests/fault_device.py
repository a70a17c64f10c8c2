"""A firmware-side process for fault injection: it captures reads into the
sealed outbox and (optionally) runs the uplink, exactly as the appliance
does, so tests and benchmarks can SIGKILL it at random moments.

Prints `C <seq> <plate>` (flushed) after each read is committed, so the
caller knows which reads the device had accepted before it died.

    python tests/fault_device.py --keys DIR --db PATH --device ID \
        [--host H --port P] [--count N] [--prefix R1-] [--rate 50] [--images]
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from firmware.config import StoreConfig, UplinkConfig  # noqa: E402
from firmware.keys import DeviceKeys  # noqa: E402
from firmware.seal import Sealer  # noqa: E402
from firmware.store import Outbox, StoreFull  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--device", required=True)
    ap.add_argument("--agency", default="demo-pd")
    ap.add_argument("--host")
    ap.add_argument("--port", type=int)
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--prefix", default="R")
    ap.add_argument("--rate", type=float, default=0.0, help="reads per second, 0 = flat out")
    ap.add_argument("--images", action="store_true")
    ap.add_argument("--alert-every", type=int, default=0)
    ap.add_argument("--window", type=int, default=64)
    ap.add_argument("--ack-timeout", type=float, default=3.0)
    ap.add_argument("--exit-when-drained", action="store_true")
    ap.add_argument("--capacity", type=int, default=2 * 1024**3)
    ap.add_argument("--min-free", type=int, default=64 * 1024 * 1024)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    import numpy as np
    from storekit import SITE, make_read

    keys = DeviceKeys.load(args.keys)
    ob = Outbox(args.db, StoreConfig(capacity_bytes=args.capacity, min_free_bytes=args.min_free), Sealer.from_keys(keys, args.device), location=SITE)
    up = None
    if args.host:
        from firmware.uplink import Uplink

        cfg = UplinkConfig(enabled=True, host=args.host, port=args.port, reconnect_min_s=0.1, reconnect_max_s=1.0,
                           ack_timeout_s=args.ack_timeout, inflight_window=args.window, telemetry_interval_s=3600)
        up = Uplink(cfg, args.device, args.agency, ob, ca_file=keys.ca_file, cert_file=keys.tls_cert,
                    key_file=keys.tls_key, receiver_keys=keys.receiver_keys)
        up.start()
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    rng = np.random.default_rng(os.getpid())
    plate_jpeg = vehicle_jpeg = None
    if args.images:
        from storekit import jpeg

        plate_jpeg, vehicle_jpeg = jpeg(rng, 120, 60), jpeg(rng, 320, 240)
    period = 1.0 / args.rate if args.rate else 0.0
    t0 = time.monotonic()
    for i in range(args.count):
        plate = f"{args.prefix}{i:05d}"
        read = make_read(plate, rng, images=args.images, plate_jpeg=plate_jpeg, vehicle_jpeg=vehicle_jpeg)
        try:
            if args.alert_every and i % args.alert_every == 0:
                ob.add_alert(read, {"pattern": plate, "purpose": "stolen-vehicle", "match": "exact"})
            else:
                ob.add_read(read)
        except StoreFull as exc:  # the read is refused (not committed); nothing stored is lost
            sys.stdout.write(f"FULL {plate} {exc}\n")
            sys.stdout.flush()
            time.sleep(0.05)
            continue
        sys.stdout.write(f"C {ob.next_seq - 1} {plate}\n")
        sys.stdout.flush()
        if up:
            up.wake()
        if period:
            delay = t0 + (i + 1) * period - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    sys.stdout.write("CAPTURED\n")
    sys.stdout.flush()
    if up is not None:
        while True:
            if args.exit_when_drained and ob.backlog()["backlog_records"] == 0:
                sys.stdout.write("DRAINED\n")
                sys.stdout.flush()
                up.stop()
                return 0
            time.sleep(0.1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
