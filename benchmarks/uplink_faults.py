"""Zero-loss fault injection at full size: device SIGKILLs at random moments
during capture and publishing, broker restarts (clean and crash), a long broker
outage with a large buffered backlog, and disk-full episodes; then proof from
the department receiver that every committed read arrived exactly once.

    .venv/bin/python benchmarks/uplink_faults.py [--kills 50] [--restarts 20] \
        [--outage-s 600] [--outage-reads 10000] [--disk-full 3] [--seed 1]

Uses a private Mosquitto (tests/broker.py), the device process
tests/fault_device.py (a read is "committed" once the device printed it
after the outbox commit) and `polewatch receive` as a separate process.
Disk-full episodes need root (a small tmpfs) and are skipped otherwise.
Prints one JSON summary.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from broker import RECEIVER, Broker  # noqa: E402
from storekit import make_department, provision_device  # noqa: E402

DEVICE = ROOT / "tests" / "fault_device.py"


def note(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Device:
    def __init__(self, name: str, keys: Path, db: Path, broker: Broker) -> None:
        self.name, self.keys, self.db, self.broker = name, keys, db, broker
        self.committed: dict[int, str] = {}
        self.refused = 0
        self._readers: dict[int, tuple[threading.Thread, list[str]]] = {}

    def launch(self, prefix: str, count: int, rate: float, extra: list[str] = ()) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, str(DEVICE), "--keys", str(self.keys), "--db", str(self.db), "--device", self.name,
             "--host", self.broker.host, "--port", str(self.broker.port), "--count", str(count),
             "--prefix", prefix, "--rate", str(rate), "--images", "--alert-every", "25", "--ack-timeout", "5",
             "--window", "256", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )

    def wait_capturing(self, proc: subprocess.Popen, timeout: float = 30) -> None:
        """Read the device's output on a thread; return once it has committed a read,
        so a SIGKILL lands while it captures and publishes, not while it starts."""
        lines: list[str] = []
        t = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
        t.start()
        self._readers[proc.pid] = (t, lines)
        deadline = time.monotonic() + timeout
        while not any(x.startswith("C ") for x in list(lines)) and time.monotonic() < deadline:
            time.sleep(0.02)

    def harvest(self, proc: subprocess.Popen, timeout: float | None = 120) -> str:
        if proc.pid in self._readers:
            proc.wait(timeout)
            thread, lines = self._readers.pop(proc.pid)
            thread.join(10)
            out = "".join(lines)
        else:
            out, _ = proc.communicate(timeout=timeout)
        for line in out.splitlines():
            if line.startswith("C "):
                _, seq, plate = line.split()
                self.committed[int(seq)] = plate
            elif line.startswith("FULL "):
                self.refused += 1
        return out

    def drain(self, timeout: float = 900) -> bool:
        proc = self.launch("DRN-", 0, 1, ["--exit-when-drained"])
        self.wait_capturing(proc, timeout=0)
        try:
            return "DRAINED" in self.harvest(proc, timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            self.harvest(proc, 30)
            return False


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=50)
    ap.add_argument("--restarts", type=int, default=20)
    ap.add_argument("--outage-s", type=float, default=600)
    ap.add_argument("--outage-reads", type=int, default=10_000)
    ap.add_argument("--disk-full", type=int, default=3)
    ap.add_argument("--rate", type=float, default=100)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rnd = random.Random(args.seed)
    base = Path(tempfile.mkdtemp(prefix="pw-faults-"))
    broker = Broker(base / "broker")
    broker.start()
    dept = make_department(base / "dept")
    devices_dir = base / "devices"
    t_start = time.monotonic()
    summary: dict = {"benchmark": "uplink_faults", "seed": args.seed}
    dev = Device("pole-faults", base / "keys", base / "outbox.db", broker)
    provision_device(dev.keys, dev.name, dept, broker, register_dir=devices_dir)
    small_keys = base / "keys-small"
    provision_device(small_keys, "pole-diskfull", dept, broker, register_dir=devices_dir)
    cert, key = broker.client_cert(RECEIVER)
    hq_db = base / "hq.db"
    rx = subprocess.Popen(
        [sys.executable, "-m", "firmware.cli", "receive", "--db", str(hq_db), "--host", broker.host,
         "--port", str(broker.port), "--ca", str(broker.ca_file), "--cert", str(cert), "--key", str(key),
         "--department-keys", str(dept.dir), "--device-keys", str(devices_dir), "--client-id", "hq-faults"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    mnt = None
    try:
        # 1. SIGKILLs at random moments, broker restarts spread among them
        restart_at = set(rnd.sample(range(args.kills), min(args.restarts, args.kills)))
        restarts = crashes = 0
        for k in range(args.kills):
            proc = dev.launch(f"K{k}-", 1_000_000, args.rate)
            dev.wait_capturing(proc)
            time.sleep(rnd.random() * 2.5)
            if k in restart_at:
                crash = rnd.random() < 0.5
                broker.restart(kill=crash)
                restarts += 1
                crashes += crash
                time.sleep(rnd.random())
            proc.send_signal(signal.SIGKILL)
            dev.harvest(proc)
        summary["kills"] = args.kills
        summary["broker_restarts"] = restarts
        summary["broker_crashes"] = crashes
        summary["after_kills_committed"] = len(dev.committed)

        note(f"kills done: {len(dev.committed)} committed")
        # 2. a long outage: the broker is down while the device buffers reads
        if args.outage_reads:
            broker.stop()
            n0 = len(dev.committed)
            t = time.monotonic()
            proc = dev.launch("OUT-", args.outage_reads, args.outage_reads / args.outage_s)
            dev.wait_capturing(proc)  # also keeps reading its output, so the pipe never blocks it
            while proc.poll() is None and time.monotonic() - t < args.outage_s + 60:
                time.sleep(1)
                if time.monotonic() - t >= args.outage_s:
                    break
            with sqlite3.connect(dev.db) as con:
                buffered = con.execute("SELECT count(DISTINCT seq) FROM parts WHERE state=0").fetchone()[0]
            proc.send_signal(signal.SIGKILL)
            dev.harvest(proc)
            summary["outage_s"] = round(time.monotonic() - t, 1)
            summary["outage_buffered_records"] = buffered
            summary["outage_reads_committed"] = len(dev.committed) - n0
            broker.start()
            t = time.monotonic()
            drained = dev.drain()
            summary["outage_backlog_drain_s"] = round(time.monotonic() - t, 1)
            summary["outage_drained"] = drained

        note(f"outage done: {summary.get('outage_buffered_records')} buffered, drained={summary.get('outage_drained')}")
        # 3. disk-full episodes on a second device whose data lives on a small tmpfs
        if args.disk_full and os.geteuid() == 0:
            mnt = base / "small"
            mnt.mkdir()
            if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mnt)]).returncode == 0:
                small = Device("pole-diskfull", small_keys, mnt / "outbox.db", broker)
                for e in range(args.disk_full):
                    filler = mnt / "filler"
                    free = os.statvfs(mnt).f_bavail * os.statvfs(mnt).f_frsize
                    with open(filler, "wb") as f:
                        f.write(b"\0" * max(0, free - 3 * 1024 * 1024))
                    note(f"disk-full episode {e}: {free // 1024} kB free before filling")
                    proc = small.launch(f"DF{e}-", 1_000_000, args.rate, ["--min-free", str(8 * 1024 * 1024)])
                    small.wait_capturing(proc)
                    time.sleep(6)  # fills the little space left, then reads are refused
                    filler.unlink()  # space comes back; the device carries on
                    time.sleep(2)
                    proc.send_signal(signal.SIGKILL)
                    small.harvest(proc)
                note(f"disk-full: {len(small.committed)} committed, {small.refused} refused; draining")
                drained = small.drain()
                summary["disk_full_episodes"] = args.disk_full
                summary["disk_full_refused_reads"] = small.refused
                summary["disk_full_drained"] = drained
                devs = [dev, small]
            else:
                devs = [dev]
        else:
            devs = [dev]

        note("disk-full episodes done")
        # 4. final drain and the department's proof
        summary["main_drained"] = dev.drain()
        time.sleep(3)
        rx.send_signal(signal.SIGTERM)  # the receiver commits, acks and prints its report
        try:
            rx_out, _ = rx.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            rx.kill()
            rx_out = ""  # what it acknowledged is committed; the store below is the proof
        try:
            rx_report = json.loads(rx_out[rx_out.index("{"):])
        except ValueError:
            rx_report = {}
        con = sqlite3.connect(hq_db)
        results = {}
        for d in devs:
            rows = dict(con.execute("SELECT seq, plate FROM records WHERE device=?", (d.name,)).fetchall())
            lost = sorted(set(d.committed) - set(rows))
            wrong = [s for s, p in d.committed.items() if s in rows and rows[s] != p]
            dup_plates = sum(c - 1 for c in Counter(rows.values()).values() if c > 1)
            gaps = [s for s in range(1, max(rows, default=0) + 1) if s not in rows]
            images = con.execute(
                "SELECT count(*) FROM images WHERE id IN (SELECT id FROM records WHERE device=?)", (d.name,)
            ).fetchone()[0]
            results[d.name] = {
                "committed_reads": len(d.committed), "received_records": len(rows), "lost": len(lost),
                "lost_examples": lost[:5], "mismatched": len(wrong), "duplicates_after_dedupe": dup_plates,
                "sequence_gaps": len(gaps), "images_received": images,
            }
        summary["devices"] = results
        summary["receiver_duplicates_ignored"] = rx_report.get("duplicates_ignored")
        summary["receiver_stats"] = rx_report.get("stats")
        summary["wall_s"] = round(time.monotonic() - t_start, 1)
        summary["loadavg_1m"] = os.getloadavg()[0]
        summary["ok"] = all(r["lost"] == 0 and r["duplicates_after_dedupe"] == 0 and r["mismatched"] == 0
                            for r in results.values())
        print(json.dumps(summary, indent=2))
    finally:
        if rx.poll() is None:
            rx.kill()
        broker.stop()
        if mnt is not None:
            time.sleep(1)
            subprocess.run(["umount", "--lazy", str(mnt)], stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    main()
