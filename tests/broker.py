"""A private, real Mosquitto broker for tests: TLS from a trustme CA, client
certificates required, identity (certificate CN) used as the user name, and
per-device ACL `pattern` lines, so tests exercise the same rules a department
broker enforces. No anonymous access.

Use from a test module:

    from tests.broker import broker  # noqa: F401  (pytest fixture)

    def test_x(broker):
        cert, key = broker.client_cert("pole-001")
        ... connect to ("127.0.0.1", broker.port) with broker.ca_file ...

The fixture is session-scoped; call `broker.restart()`, `broker.stop()` and
`broker.start()` to inject outages (persistence is on, so queued QoS 1
messages survive a clean restart, as on a real broker).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

MOSQUITTO = os.environ.get("POLEWATCH_MOSQUITTO") or shutil.which("mosquitto") or "/usr/sbin/mosquitto"
AGENCY = "demo-pd"
RECEIVER = "hq-receiver"
ADMIN = "hq-admin"

DEVICE_PUBLISH = ("reads", "alerts", "status", "telemetry", "audit", "cmd/result")
DEVICE_SUBSCRIBE = ("cmd", "config", "hotlist", "ack")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def acl_text(agency: str = AGENCY) -> str:
    """ACL: each device (CN = device id) may only use its own topics; the
    department receiver reads every device's records and writes acks; the
    admin identity sends commands, config and hot lists."""
    base = f"polewatch/v1/{agency}"
    lines = ["# devices: identity from the client certificate CN (%u)"]
    lines += [f"pattern write {base}/%u/{ch}" for ch in DEVICE_PUBLISH]
    lines += [f"pattern read {base}/%u/{ch}" for ch in DEVICE_SUBSCRIBE]
    lines += ["", f"user {RECEIVER}"]
    lines += [f"topic read {base}/+/{ch}" for ch in ("reads", "alerts", "audit", "status", "telemetry")]
    lines += [f"topic write {base}/+/ack"]
    lines += ["", f"user {ADMIN}"]
    lines += [f"topic write {base}/+/{ch}" for ch in ("cmd", "config", "hotlist")]
    lines += [f"topic read {base}/+/{ch}" for ch in ("cmd/result", "status", "telemetry", "audit")]
    return "\n".join(lines) + "\n"


class Broker:
    """One Mosquitto process on a free port with a TLS listener (mTLS)."""

    def __init__(self, workdir: Path, agency: str = AGENCY, max_packet_size: int = 8 * 1024 * 1024) -> None:
        import trustme

        self.workdir = workdir
        self.agency = agency
        workdir.mkdir(parents=True, exist_ok=True)
        self.ca = trustme.CA(organization_name="Polewatch test department CA")
        self.ca_file = workdir / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        server = self.ca.issue_cert("localhost", "127.0.0.1", common_name="broker")
        self.server_cert = workdir / "server.pem"
        self.server_key = workdir / "server.key"
        server.private_key_pem.write_to_path(str(self.server_key))
        server.cert_chain_pems[0].write_to_path(str(self.server_cert))
        self.host = "127.0.0.1"
        self.port = free_port()
        self.acl_file = workdir / "acl"
        self.acl_file.write_text(acl_text(agency))
        self.data = workdir / "data"
        self.data.mkdir(exist_ok=True)
        self.log_file = workdir / "mosquitto.log"
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(
            "\n".join(
                [
                    "per_listener_settings false",
                    "allow_anonymous false",
                    f"acl_file {self.acl_file}",
                    "persistence true",
                    f"persistence_location {self.data}/",
                    "autosave_interval 1",
                    "max_queued_messages 0",
                    "max_inflight_messages 0",
                    f"max_packet_size {max_packet_size}",
                    # as root, Mosquitto would drop to user "mosquitto", which cannot read the test dir
                    f"user {pwd.getpwuid(os.geteuid()).pw_name}",
                    f"log_dest file {self.log_file}",
                    "log_type error",
                    "log_type warning",
                    "log_type notice",
                    "log_type subscribe",
                    "log_type information",
                    f"listener {self.port} {self.host}",
                    f"cafile {self.ca_file}",
                    f"certfile {self.server_cert}",
                    f"keyfile {self.server_key}",
                    "require_certificate true",
                    "use_identity_as_username true",
                    "",
                ]
            )
        )
        self.proc: subprocess.Popen[bytes] | None = None

    # -- identities -------------------------------------------------------
    def client_cert(self, name: str) -> tuple[Path, Path]:
        """A client certificate with CN=`name` (the broker's user name)."""
        cert = self.workdir / f"{name}.crt"
        key = self.workdir / f"{name}.key"
        if not cert.exists():
            issued = self.ca.issue_cert(common_name=name)
            issued.private_key_pem.write_to_path(str(key))
            issued.cert_chain_pems[0].write_to_path(str(cert))
            os.chmod(key, 0o600)
        return cert, key

    def sign_csr(self, csr_pem: bytes, days: int = 30) -> bytes:
        """Sign a device CSR with the test CA (what the department PKI does)."""
        import datetime

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.x509.oid import ExtendedKeyUsageOID

        csr = x509.load_pem_x509_csr(csr_pem)
        ca_key = serialization.load_pem_private_key(self.ca.private_key_pem.bytes(), None)
        ca_cert = x509.load_pem_x509_certificate(self.ca.cert_pem.bytes())
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(csr.subject)
            .issuer_name(ca_cert.subject)
            .public_key(csr.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
        )
        return cert.public_bytes(serialization.Encoding.PEM)

    def topic(self, device: str, channel: str) -> str:
        return f"polewatch/v1/{self.agency}/{device}/{channel}"

    # -- process ----------------------------------------------------------
    name = "mosquitto"

    def start(self, timeout: float = 10.0) -> None:
        if self.proc and self.proc.poll() is None:
            return
        self.proc = self._launch()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: {err}\n{self.log_tail()}")
            if self._tls_ready():
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not listen on {self.port}:\n{self.log_tail()}")

    def _launch(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def _tls_ready(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def stop(self, kill: bool = False) -> None:
        """Stop the broker: SIGTERM (saves persistence) or SIGKILL (a crash)."""
        if not self.proc or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def restart(self, kill: bool = False) -> None:
        self.stop(kill=kill)
        self.start()

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def ssl_context(self, name: str) -> ssl.SSLContext:
        cert, key = self.client_cert(name)
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        ctx.load_cert_chain(str(cert), str(key))
        return ctx


class Mqtt311Broker(Broker):
    """An MQTT 3.1.1-only broker (amqtt) on a free port with TLS from the same test CA.

    Mosquitto 2.0 always accepts MQTT 5, so the uplink's fall-back is proven
    against a real broker that does not: amqtt refuses a version-5 CONNECT with
    the 3.1.1 CONNACK code "unacceptable protocol version". It has no
    certificate identities or ACLs, so it stands only for the protocol check.
    """

    name = "amqtt"

    def _launch(self) -> subprocess.Popen[bytes]:
        conf = self.workdir / "amqtt.yaml"
        conf.write_text("\n".join([
            "listeners:",
            "  default:",
            "    type: tcp",
            f"    bind: {self.host}:{self.port}",
            "    ssl: true",
            f"    cafile: {self.ca_file}",
            f"    certfile: {self.server_cert}",
            f"    keyfile: {self.server_key}",
            "plugins:",
            "  amqtt.plugins.authentication.AnonymousAuthPlugin:",
            "    allow_anonymous: true",
            "",
        ]))
        with open(self.log_file, "ab") as log:
            return subprocess.Popen([sys.executable, "-m", "amqtt.scripts.broker_script", "-c", str(conf)],
                                    stdout=log, stderr=log)


def _running(b: Broker) -> Iterator[Broker]:
    b.start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture()
def broker311(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A running MQTT 3.1.1-only broker with TLS (amqtt)."""
    yield from _running(Mqtt311Broker(tmp_path_factory.mktemp("amqtt")))


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A running private Mosquitto with mTLS and per-device ACLs."""
    if not Path(MOSQUITTO).exists() and not shutil.which(MOSQUITTO):
        pytest.fail(f"mosquitto not found at {MOSQUITTO}: install the Debian package 'mosquitto'")
    yield from _running(Broker(tmp_path_factory.mktemp("mosquitto")))
