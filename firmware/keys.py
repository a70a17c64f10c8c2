"""Device and department keys, as files, with the permissions the policy needs.

The device holds: its Ed25519 signing key (signs every sealed record), a
separate ECDSA P-256 TLS key + certificate for mutual TLS to the broker, the
department CA, the department's X25519 *public* sealing keys (one per key id,
so rotation keeps older records readable at headquarters), the receiver's
Ed25519 public keys (acks must be signed by one of them) and the admins'
public keys (remote commands). It never holds a key that opens its own
records. Private key files are written 0600, atomically.

Layout of the device key directory:

    device.key  device.pub          Ed25519 record-signing key
    tls.key  tls.csr  tls.crt        mTLS client identity (CN = device id)
    ca.crt                           department CA that signs the broker
    department/<kid>.pub  department/current   sealing keys, current kid
    receiver/<name>.pub              keys that may sign acks
    admin/<name>.pub                 admin keys (used by firmware.remote)

The department side (`DepartmentKeys`) keeps `<kid>.key` (X25519 private)
per key id and `receiver.key` (Ed25519, signs acks).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.x509.oid import NameOID

KID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class KeyFileError(Exception):
    """A key file missing, unreadable or of the wrong kind; the message names it."""


def _raw_public(key: Ed25519PublicKey | X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint(key: Ed25519PublicKey | X25519PublicKey | ec.EllipticCurvePublicKey) -> str:
    """`SHA256:<hex>` of the raw (or DER SubjectPublicKeyInfo for EC) public key."""
    if isinstance(key, (Ed25519PublicKey, X25519PublicKey)):
        data = _raw_public(key)
    else:
        data = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "SHA256:" + hashlib.sha256(data).hexdigest()


def default_kid(key: X25519PublicKey) -> str:
    """A key id derived from the key itself (first 16 hex of its fingerprint)."""
    return hashlib.sha256(_raw_public(key)).hexdigest()[:16]


def write_private(path: Path, data: bytes) -> None:
    """Write a secret atomically with mode 0600 (never briefly world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def write_public(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def _pem_private(key: Ed25519PrivateKey | X25519PrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _pem_public(key: Ed25519PublicKey | X25519PublicKey | ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"{path}: key file missing (run `polewatch keys init`/`keys install-*`)") from None
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read key file: {exc.strerror or exc}") from None


def load_private(path: Path, kind: type) -> object:
    try:
        key = serialization.load_pem_private_key(_read(path), None)
    except ValueError as exc:
        raise KeyFileError(f"{path}: not a PEM private key: {exc}") from None
    if not isinstance(key, kind):
        raise KeyFileError(f"{path}: expected a {kind.__name__}, found {type(key).__name__}")
    return key


def load_public(path: Path, kind: type) -> object:
    try:
        key = serialization.load_pem_public_key(_read(path))
    except ValueError as exc:
        raise KeyFileError(f"{path}: not a PEM public key: {exc}") from None
    if not isinstance(key, kind):
        raise KeyFileError(f"{path}: expected a {kind.__name__}, found {type(key).__name__}")
    return key


def parse_public(pem: bytes, kind: type, source: str = "<key>") -> object:
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as exc:
        raise KeyFileError(f"{source}: not a PEM public key: {exc}") from None
    if not isinstance(key, kind):
        raise KeyFileError(f"{source}: expected a {kind.__name__}, found {type(key).__name__}")
    return key


def _load_dir(path: Path, kind: type) -> dict[str, object]:
    out: dict[str, object] = {}
    if path.is_dir():
        for f in sorted(path.glob("*.pub")):
            out[f.stem] = load_public(f, kind)
    return out


# -- device side -------------------------------------------------------------


@dataclass
class DeviceKeys:
    """Everything the device's key directory holds, loaded and checked."""

    dir: Path
    signing_key: Ed25519PrivateKey
    department_keys: dict[str, X25519PublicKey]
    current_kid: str | None
    receiver_keys: dict[str, Ed25519PublicKey] = field(default_factory=dict)
    admin_keys: dict[str, Ed25519PublicKey] = field(default_factory=dict)

    @property
    def tls_cert(self) -> Path:
        return self.dir / "tls.crt"

    @property
    def tls_key(self) -> Path:
        return self.dir / "tls.key"

    @property
    def ca_file(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.signing_key.public_key()

    @classmethod
    def load(cls, directory: Path | str) -> DeviceKeys:
        d = Path(directory)
        signing = load_private(d / "device.key", Ed25519PrivateKey)
        dept = _load_dir(d / "department", X25519PublicKey)
        current: str | None = None
        cur_file = d / "department" / "current"
        if cur_file.exists():
            current = cur_file.read_text().strip()
            if current not in dept:
                raise KeyFileError(f"{cur_file}: current key id {current!r} has no department/{current}.pub")
        elif len(dept) == 1:
            current = next(iter(dept))
        return cls(
            dir=d,
            signing_key=signing,  # type: ignore[arg-type]
            department_keys=dept,  # type: ignore[arg-type]
            current_kid=current,
            receiver_keys=_load_dir(d / "receiver", Ed25519PublicKey),  # type: ignore[arg-type]
            admin_keys=_load_dir(d / "admin", Ed25519PublicKey),  # type: ignore[arg-type]
        )

    def fingerprints(self) -> dict[str, object]:
        out: dict[str, object] = {"device_signing": fingerprint(self.public_key)}
        tls_key = self.dir / "tls.key"
        if tls_key.exists():
            k = load_private(tls_key, ec.EllipticCurvePrivateKey)
            out["tls"] = fingerprint(k.public_key())  # type: ignore[attr-defined]
        if self.tls_cert.exists():
            cert = x509.load_pem_x509_certificate(self.tls_cert.read_bytes())
            out["certificate"] = {
                "subject": cert.subject.rfc4514_string(),
                "issuer": cert.issuer.rfc4514_string(),
                "not_after": cert.not_valid_after_utc.isoformat(),
                "sha256": cert.fingerprint(hashes.SHA256()).hex(),
            }
        out["department"] = {k: fingerprint(v) for k, v in self.department_keys.items()}
        out["current_kid"] = self.current_kid
        out["receiver"] = {k: fingerprint(v) for k, v in self.receiver_keys.items()}
        out["admin"] = {k: fingerprint(v) for k, v in self.admin_keys.items()}
        return out


def init_device(directory: Path | str, device_id: str, agency: str, force: bool = False) -> Path:
    """Create the device signing key, the TLS key and a CSR (CN = device id).

    Refuses to overwrite existing keys unless `force`: replacing a device key
    orphans every record it signed that the department has not yet verified.
    """
    d = Path(directory)
    if (d / "device.key").exists() and not force:
        raise KeyFileError(f"{d / 'device.key'}: already exists; refusing to replace a device key (use --force)")
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(d, 0o700)
    signing = Ed25519PrivateKey.generate()
    write_private(d / "device.key", _pem_private(signing))
    write_public(d / "device.pub", _pem_public(signing.public_key()))
    tls = ec.generate_private_key(ec.SECP256R1())
    write_private(d / "tls.key", _pem_private(tls))
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, device_id),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, agency),
                ]
            )
        )
        .sign(tls, hashes.SHA256())
    )
    write_public(d / "tls.csr", csr.public_bytes(serialization.Encoding.PEM))
    return d / "tls.csr"


def install_cert(directory: Path | str, cert_pem: bytes) -> x509.Certificate:
    """Install the department-signed TLS certificate; it must match tls.key."""
    d = Path(directory)
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError as exc:
        raise KeyFileError(f"not a PEM certificate: {exc}") from None
    key = load_private(d / "tls.key", ec.EllipticCurvePrivateKey)
    if fingerprint(cert.public_key()) != fingerprint(key.public_key()):  # type: ignore[attr-defined,arg-type]
        raise KeyFileError("certificate does not match this device's tls.key (wrong CSR signed?)")
    write_public(d / "tls.crt", cert_pem)
    return cert


def install_ca(directory: Path | str, ca_pem: bytes) -> None:
    try:
        x509.load_pem_x509_certificates(ca_pem)
    except ValueError as exc:
        raise KeyFileError(f"not a PEM CA certificate: {exc}") from None
    write_public(Path(directory) / "ca.crt", ca_pem)


def install_department_key(
    directory: Path | str, pub_pem: bytes, kid: str | None = None, make_current: bool = True
) -> str:
    """Install a department sealing public key under its key id; older ids stay."""
    key = parse_public(pub_pem, X25519PublicKey, "department key")
    kid = kid or default_kid(key)  # type: ignore[arg-type]
    if not KID_RE.match(kid):
        raise KeyFileError(f"key id {kid!r}: use letters, digits, '.', '_' or '-' (max 64)")
    d = Path(directory) / "department"
    write_public(d / f"{kid}.pub", _pem_public(key))  # type: ignore[arg-type]
    if make_current:
        write_public(d / "current", (kid + "\n").encode())
    return kid


def install_named_public(directory: Path | str, group: str, name: str, pub_pem: bytes) -> None:
    """Install a receiver (ack-signing) or admin Ed25519 public key."""
    if group not in ("receiver", "admin"):
        raise KeyFileError(f"unknown key group {group!r}")
    if not KID_RE.match(name):
        raise KeyFileError(f"key name {name!r}: use letters, digits, '.', '_' or '-' (max 64)")
    key = parse_public(pub_pem, Ed25519PublicKey, f"{group} key")
    write_public(Path(directory) / group / f"{name}.pub", _pem_public(key))  # type: ignore[arg-type]


# -- department side -----------------------------------------------------------


@dataclass
class DepartmentKeys:
    """The department's private sealing keys (by key id) and its ack-signing key."""

    dir: Path
    private_keys: dict[str, X25519PrivateKey]
    receiver_key: Ed25519PrivateKey | None

    @classmethod
    def load(cls, directory: Path | str) -> DepartmentKeys:
        d = Path(directory)
        keys: dict[str, X25519PrivateKey] = {}
        for f in sorted(d.glob("*.key")):
            if f.stem == "receiver":
                continue
            keys[f.stem] = load_private(f, X25519PrivateKey)  # type: ignore[assignment]
        if not keys:
            raise KeyFileError(f"{d}: no department sealing keys (<kid>.key); run `polewatch keys department-init`")
        rk = d / "receiver.key"
        receiver = load_private(rk, Ed25519PrivateKey) if rk.exists() else None
        return cls(dir=d, private_keys=keys, receiver_key=receiver)  # type: ignore[arg-type]

    @staticmethod
    def generate(directory: Path | str, kid: str | None = None) -> str:
        """Create a new sealing key pair (rotation: old ones are kept) and,
        once, the receiver's ack-signing key. Returns the key id."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = X25519PrivateKey.generate()
        kid = kid or default_kid(key.public_key())
        if not KID_RE.match(kid):
            raise KeyFileError(f"key id {kid!r}: use letters, digits, '.', '_' or '-' (max 64)")
        if (d / f"{kid}.key").exists():
            raise KeyFileError(f"{d / (kid + '.key')}: key id already in use")
        write_private(d / f"{kid}.key", _pem_private(key))
        write_public(d / f"{kid}.pub", _pem_public(key.public_key()))
        if not (d / "receiver.key").exists():
            rk = Ed25519PrivateKey.generate()
            write_private(d / "receiver.key", _pem_private(rk))
            write_public(d / "receiver.pub", _pem_public(rk.public_key()))
        return kid


def load_device_public_keys(directory: Path | str) -> dict[str, Ed25519PublicKey]:
    """The department's register of device signing keys: `<device-id>.pub`."""
    return _load_dir(Path(directory), Ed25519PublicKey)  # type: ignore[return-value]
