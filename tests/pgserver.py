"""A private PostgreSQL for the receiver's PostgreSQL tests: initdb in a temporary
directory, trust authentication, listening on 127.0.0.1 on a free port, stopped
at the end of the session. Tests start what they need; the machine's own
PostgreSQL is not used (POLEWATCH_TEST_PG points elsewhere if wanted).

PostgreSQL refuses to run as root, so as root the server runs as the `postgres`
user the Debian package creates.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

try:
    from broker import free_port
except ImportError:  # tests/ as a package
    from tests.broker import free_port


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    return found[-1] if found else shutil.which(name)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """URL of a running private PostgreSQL (database `postgres`, user `postgres`)."""
    if os.environ.get("POLEWATCH_TEST_PG"):
        yield os.environ["POLEWATCH_TEST_PG"]
        return
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.fail("PostgreSQL server binaries not found: install the Debian package 'postgresql'")
    run_as: list[str] = []
    work = Path(tempfile.mkdtemp(prefix="pw-pg-"))
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(work, user.pw_uid, user.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    data, port = work / "data", free_port()
    subprocess.run([*run_as, initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"],
                   check=True, capture_output=True)
    opts = f"-p {port} -k {work} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run([*run_as, pg_ctl, "-D", str(data), "-o", opts, "-l", str(work / "log"), "-w", "start"],
                   check=True, capture_output=True)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*run_as, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
