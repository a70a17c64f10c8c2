"""Draining a backlog of sealed text reads to a local TLS broker: reads per second
until every read is acknowledged by the department receiver.

    .venv/bin/python benchmarks/uplink_drain.py [--reads 100000] [--window 1000] [--ack-mode department]

Starts a private Mosquitto (mTLS, ACLs; tests/broker.py), fills an outbox
with N sealed text-only reads, runs `polewatch receive` as a separate
process, then times the uplink from first publish until the outbox backlog
is zero (department mode: every read stored and acknowledged by the
receiver). Prints one JSON summary, with the machine load.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from broker import RECEIVER, Broker  # noqa: E402
from storekit import make_department, make_read, outbox_for, provision_device, uplink_cfg  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reads", type=int, default=100_000)
    ap.add_argument("--window", type=int, default=1000)
    ap.add_argument("--ack-mode", choices=["department", "puback"], default="department")
    ap.add_argument("--timeout", type=float, default=1800)
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="pw-drain-"))
    broker = Broker(base / "broker")
    broker.start()
    rx = None
    try:
        dept = make_department(base / "dept")
        devices = base / "devices"
        dk = provision_device(base / "keys", "pole-drain", dept, broker, register_dir=devices)
        ob = outbox_for(base / "outbox.db", dk, "pole-drain")
        t = time.perf_counter()
        read = make_read("7DRN000", images=False)
        n = 0
        while n < args.reads:
            with ob.batch():
                for _ in range(min(500, args.reads - n)):
                    read.plate = f"D{n:07d}"
                    ob.add_read(read)
                    n += 1
        fill_s = time.perf_counter() - t
        cert, key = broker.client_cert(RECEIVER)
        rx = subprocess.Popen(
            [sys.executable, "-m", "firmware.cli", "receive", "--db", str(base / "hq.db"), "--host", broker.host,
             "--port", str(broker.port), "--ca", str(broker.ca_file), "--cert", str(cert), "--key", str(key),
             "--department-keys", str(dept.dir), "--device-keys", str(devices), "--client-id", "hq-bench"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        time.sleep(2.0)
        from firmware.uplink import Uplink

        cfg = uplink_cfg(broker, inflight_window=args.window, ack_mode=args.ack_mode, ack_timeout_s=120)
        up = Uplink(cfg, "pole-drain", broker.agency, ob, ca_file=dk.ca_file, cert_file=dk.tls_cert,
                    key_file=dk.tls_key, receiver_keys=dk.receiver_keys)
        t0 = time.perf_counter()
        up.start()
        samples = []
        while True:
            left = ob.backlog()["backlog_records"]
            samples.append((time.perf_counter() - t0, left))
            if left == 0 or time.perf_counter() - t0 > args.timeout:
                break
            time.sleep(0.5)
        drain_s = time.perf_counter() - t0
        up.stop()
        rx.send_signal(signal.SIGTERM)  # the receiver prints its report and exits
        out, _ = rx.communicate(timeout=30)
        report = json.loads(out[out.index("{"):])
        dev = report["devices"].get("pole-drain", {})
        print(json.dumps({
            "benchmark": "uplink_drain",
            "reads": args.reads,
            "ack_mode": args.ack_mode,
            "window": args.window,
            "fill_reads_per_s": round(args.reads / fill_s, 1),
            "drain_s": round(drain_s, 2),
            "drain_reads_per_s": round((args.reads - samples[-1][1]) / drain_s, 1),
            "left_undelivered": samples[-1][1],
            "receiver_records": dev.get("records"),
            "receiver_gaps": dev.get("gaps", []),
            "receiver_duplicates_ignored": report.get("duplicates_ignored"),
            "uplink": up.stats,
            "cpus": os.cpu_count(),
            "loadavg_1m": os.getloadavg()[0],
            "target_reads_per_s": 2000,
        }, indent=2))
    finally:
        if rx and rx.poll() is None:
            rx.kill()
        broker.stop()


if __name__ == "__main__":
    main()
