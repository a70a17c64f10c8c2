"""Zero loss under faults: a real device process SIGKILLed at random moments
while capturing and publishing, broker restarts (clean and crash) and a broker
outage, against a real Mosquitto and the reference receiver. Scaled down for
the test suite; benchmarks/uplink_faults.py runs the full-size version."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from storekit import RunningReceiver, make_department, provision_device

HERE = Path(__file__).resolve().parent


def test_no_read_lost_or_duplicated_across_sigkills_and_broker_faults(tmp_path, broker):
    dept = make_department(tmp_path / "dept")
    devices = tmp_path / "devices"
    device = "pole-faults"
    provision_device(tmp_path / "keys", device, dept, broker, register_dir=devices)
    db = tmp_path / "outbox.db"
    rnd = random.Random(11)
    committed: dict[int, str] = {}

    def launch(prefix: str, count: int, extra: list[str] = ()) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, str(HERE / "fault_device.py"), "--keys", str(tmp_path / "keys"), "--db", str(db),
             "--device", device, "--host", broker.host, "--port", str(broker.port), "--count", str(count),
             "--prefix", prefix, "--rate", "100", "--images", "--alert-every", "25", "--ack-timeout", "2",
             *extra],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )

    readers: dict[int, tuple[threading.Thread, list[str]]] = {}

    def read_output(proc: subprocess.Popen) -> list[str]:
        lines: list[str] = []
        t = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
        t.start()
        readers[proc.pid] = (t, lines)
        return lines

    def started(proc: subprocess.Popen) -> None:
        """Return once the device has committed a read, so every SIGKILL lands while
        it is capturing and publishing."""
        lines = read_output(proc)
        deadline = time.monotonic() + 30
        while not any(x.startswith("C ") for x in list(lines)) and time.monotonic() < deadline:
            time.sleep(0.02)

    def harvest(proc: subprocess.Popen) -> str:
        proc.wait(60)
        thread, lines = readers.pop(proc.pid)
        thread.join(10)
        out = "".join(lines)
        for line in out.splitlines():
            if line.startswith("C "):
                _, seq, plate = line.split()
                committed[int(seq)] = plate
        return out

    kills = 0
    with RunningReceiver(broker, dept, devices, tmp_path / "hq.db") as hq:
        # fault schedule: 5 SIGKILLs of the device; 3 broker restarts (one a crash); one outage
        for run in range(5):
            proc = launch(f"K{run}-", 100_000)
            started(proc)
            time.sleep(0.6 + 0.6 * rnd.random())
            if run == 0:
                broker.restart()
            elif run == 2:
                broker.stop()  # outage: the device keeps capturing into its outbox
                time.sleep(2.0)
            elif run == 3:
                broker.restart(kill=True)
            elif run == 4:
                broker.restart()
            time.sleep(0.5 * rnd.random())
            proc.send_signal(signal.SIGKILL)
            kills += 1
            harvest(proc)
            if run == 2:
                broker.start()
        final = launch("FIN-", 0, ["--exit-when-drained"])
        read_output(final)
        out = harvest(final)
        assert "DRAINED" in out, "device did not drain its outbox"
        assert hq.wait_for(lambda: hq.query("SELECT count(*) FROM records")[0][0] >= max(committed), 30)
        time.sleep(0.5)
        rows = hq.query("SELECT seq, plate FROM records WHERE device=? ORDER BY seq", (device,))
        report = hq.store.report()

    assert kills == 5 and len(committed) >= 5
    got = dict(rows)
    assert set(committed) <= set(got), f"lost: {sorted(set(committed) - set(got))[:10]}"
    assert all(got[s] == p for s, p in committed.items())
    assert sorted(got) == list(range(1, max(got) + 1)), "sequence gap at headquarters"
    assert max(Counter(got.values()).values()) == 1, "a read was stored twice"
    assert "gaps" not in report["devices"][device]
    # every image part arrived and was acknowledged too
    assert report["images"] == 2 * len(got)
