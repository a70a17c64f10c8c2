"""Signed remote maintenance: the `cmd` topic handler and its replay protection.

A command is an envelope (`firmware.envelope`) signed by an administrator key
the device trusts, whose payload names the target device, a nonce, an issue
time and an expiry. The device refuses it when unsigned, malformed, signed
by an unknown key, aimed at another device or agency, expired, issued in
the future, valid for longer than allowed, or replayed (nonces persist in
SQLite until their command expires, so a reboot does not reopen the window).
Every command, accepted or refused, is audited with the issuer, purpose and
case number; the answer is JSON for `cmd/result`.

`CommandProcessor.handle(payload) -> bytes` is what the uplink registers on `cmd`.
What a command does on the device is injected (`Handlers`), so the same
processor runs in the app, in tests with real parts, and in the simulator.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from firmware.audit import AuditError
from firmware.config import Config, ConfigError, parse
from firmware.envelope import EnvelopeError, iso, open_envelope, parse_time, seal
from firmware.hotlist.manager import Auditor, TrustedKeys
from firmware.hotlist.model import HotlistError
from firmware.purposes import PurposeRefused, check_access_purpose

log = logging.getLogger(__name__)
FORMAT = "polewatch-command/1"
MAX_COMMAND_BYTES = 8 * 1024 * 1024
COMMANDS = ("status", "set_config", "update_hotlist", "start_update", "reboot", "rotate_keys", "snapshot",
            "fetch_logs", "evidence_hold")
_NONCE = re.compile(r"^[0-9a-f]{32,128}$")
_NAME = re.compile(r"^[A-Za-z0-9*][A-Za-z0-9_.@*-]{0,63}$")
_PAYLOAD_KEYS = {"v", "command", "args", "device", "agency", "nonce", "issued", "expires", "issuer", "purpose", "case"}


class CommandRefused(Exception):
    """A command the device will not run; the message is returned and audited."""


class NonceStore:
    """Nonces of accepted commands, kept until the command would have expired anyway."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("CREATE TABLE IF NOT EXISTS nonces (nonce TEXT PRIMARY KEY, expires REAL NOT NULL)")
        self._lock = threading.Lock()

    def claim(self, nonce: str, expires: datetime, now: datetime) -> bool:
        """Record a nonce; False when it was already used (a replay)."""
        with self._lock:
            self._db.execute("DELETE FROM nonces WHERE expires < ?", (now.timestamp() - 3600,))
            try:
                self._db.execute("INSERT INTO nonces VALUES (?, ?)", (nonce, expires.timestamp()))
            except sqlite3.IntegrityError:
                return False
            return True

    def close(self) -> None:
        self._db.close()


@dataclass
class Handlers:
    """What commands do on this device; None means 'not available here'."""

    status: Callable[[], dict[str, Any]] | None = None
    get_config: Callable[[], Config] | None = None
    apply_config: Callable[[Config], dict[str, Any] | None] | None = None
    health_check: Callable[[], bool] | None = None
    hotlists: Any = None  # firmware.hotlist.HotlistManager
    start_update: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    reboot: Callable[[], None] | None = None
    rotate_keys: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    snapshot: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    fetch_logs: Callable[[int], list[str]] | None = None
    holds: Any = None  # firmware.retention.EvidenceHolds


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class CommandProcessor:
    def __init__(
        self,
        device_id: str,
        agency: str,
        admin_keys: TrustedKeys,
        nonces: NonceStore,
        audit: Auditor,
        handlers: Handlers,
        clock: Callable[[], datetime] = _utcnow,
        max_lifetime: timedelta = timedelta(days=1),
        skew: timedelta = timedelta(minutes=5),
    ) -> None:
        self.device_id, self.agency = device_id, agency
        self._admin_keys = admin_keys
        self.nonces, self.audit, self.h = nonces, audit, handlers
        self.clock, self.max_lifetime, self.skew = clock, max_lifetime, skew
        self._lock = threading.Lock()  # one command at a time: config apply and rollback must not interleave

    def trusted(self) -> Mapping[str, Ed25519PublicKey]:
        return self._admin_keys() if callable(self._admin_keys) else self._admin_keys

    def handle(self, payload: bytes) -> bytes:
        """Verify and run one command; always returns a JSON result (never raises).

        A command whose acceptance cannot be written to the audit log is not run."""
        try:
            return self._handle(payload)
        except AuditError as exc:
            log.error("command not run: %s", exc)
            return self._result(_peek(payload), False, f"command refused: audit log unavailable ({exc})", None,
                                self.clock())

    def _handle(self, payload: bytes) -> bytes:
        now = self.clock()
        seen: dict[str, Any] = {}
        try:
            cmd = self._verify(payload, now, seen)
        except CommandRefused as exc:
            return self._refuse(seen or _peek(payload), str(exc), now)
        with self._lock:
            try:
                result = self._run(cmd)
            except CommandRefused as exc:
                return self._refuse(cmd, str(exc), now, accepted=True)
            except AuditError:
                raise
            except Exception as exc:  # a handler failed: report it, keep serving
                log.exception("command %s failed", cmd["command"])
                return self._refuse(cmd, f"{type(exc).__name__}: {exc}", now, accepted=True)
        ok = not (isinstance(result, dict) and result.get("rolled_back"))
        self._audit(cmd, "cmd_done" if ok else "cmd_failed", {"result": _short(result)})
        return self._result(cmd, ok, None if ok else "health check failed; configuration rolled back", result, now)

    # -- checks --------------------------------------------------------------
    def _verify(self, payload: bytes, now: datetime, seen: dict[str, Any]) -> dict[str, Any]:
        try:
            cmd = open_envelope(payload, self.trusted(), FORMAT, MAX_COMMAND_BYTES)
        except EnvelopeError as exc:
            raise CommandRefused(f"command refused: {exc}") from None
        # signed by a trusted key: from here on the issuer is known, whatever else is wrong
        seen.update({k: cmd[k] for k in ("nonce", "command", "issuer", "purpose", "case")
                     if isinstance(cmd.get(k), str)})
        extra = sorted(set(cmd) - _PAYLOAD_KEYS)
        if extra:
            raise CommandRefused(f"command refused: unknown fields {extra}")
        if cmd.get("v") != 1:
            raise CommandRefused(f"command refused: version {cmd.get('v')!r} is not 1")
        for name in ("command", "device", "agency", "nonce", "issuer"):
            if not isinstance(cmd.get(name), str):
                raise CommandRefused(f"command refused: {name} must be a string")
        if cmd["command"] not in COMMANDS:
            raise CommandRefused(f"command refused: unknown command {cmd['command'][:40]!r}")
        if not _NONCE.match(cmd["nonce"]):
            raise CommandRefused("command refused: nonce must be 32-128 lower-case hex digits")
        if not _NAME.match(cmd["issuer"]):
            raise CommandRefused("command refused: issuer must name the administrator")
        if not isinstance(cmd.get("args", {}), dict):
            raise CommandRefused("command refused: args must be an object")
        if cmd["agency"] != self.agency or cmd["device"] not in (self.device_id, "*"):
            raise CommandRefused(f"command refused: addressed to {cmd['agency'][:64]}/{cmd['device'][:64]}")
        try:
            issued = parse_time(cmd.get("issued"), "issued")
            expires = parse_time(cmd.get("expires"), "expires")
        except EnvelopeError as exc:
            raise CommandRefused(f"command refused: {exc}") from None
        if issued > now + self.skew:
            raise CommandRefused(f"command refused: issued in the future ({iso(issued)})")
        if expires <= now:
            raise CommandRefused(f"command refused: expired at {iso(expires)}")
        if expires - issued > self.max_lifetime:
            raise CommandRefused(f"command refused: valid for longer than {self.max_lifetime}")
        purpose, case = cmd.get("purpose", "maintenance"), cmd.get("case")
        if case is not None and not isinstance(case, str):
            raise CommandRefused("command refused: case must be a string")
        try:
            check_access_purpose(purpose, case)
        except PurposeRefused as exc:
            raise CommandRefused(f"command refused: {exc}") from None
        if not self.nonces.claim(cmd["nonce"], expires, now):
            raise CommandRefused(f"command refused: nonce {cmd['nonce'][:16]}... already used (replay)")
        cmd.setdefault("args", {})
        cmd["purpose"] = purpose
        return cmd

    # -- commands ------------------------------------------------------------
    def _run(self, cmd: dict[str, Any]) -> dict[str, Any]:
        name, args = cmd["command"], cmd["args"]
        self._audit(cmd, "cmd_accepted", {"args": _short(_redact(args))})
        h = self.h
        if name == "status":
            return _need(h.status, name)()
        if name == "set_config":
            return self._set_config(args)
        if name == "update_hotlist":
            if h.hotlists is None:
                raise CommandRefused("update_hotlist: no hot-list manager on this device")
            data = args.get("hotlist")
            if isinstance(args.get("hotlist_b64"), str) and data is None:  # gzip-compressed, base64
                import base64
                import binascii

                try:
                    data = base64.b64decode(args["hotlist_b64"], validate=True)
                except (binascii.Error, ValueError):
                    raise CommandRefused("update_hotlist: args.hotlist_b64 is not base64") from None
            elif isinstance(data, str):
                data = data.encode()
            else:
                raise CommandRefused("update_hotlist: give args.hotlist (signed list as text) or args.hotlist_b64")
            try:
                return h.hotlists.install(data, actor=cmd["issuer"], source="command")
            except HotlistError as exc:
                raise CommandRefused(str(exc)) from None
        if name == "start_update":
            return _need(h.start_update, name)(args)
        if name == "reboot":
            fn = _need(h.reboot, name)
            fn()
            return {"rebooting": True}
        if name == "rotate_keys":
            return _need(h.rotate_keys, name)(args)
        if name == "snapshot":
            return _need(h.snapshot, name)(args)
        if name == "fetch_logs":
            lines = args.get("lines", 200)
            if not isinstance(lines, int) or isinstance(lines, bool) or not 1 <= lines <= 5000:
                raise CommandRefused("fetch_logs: args.lines must be 1-5000")
            return {"lines": _need(h.fetch_logs, name)(lines)}
        if name == "evidence_hold":
            return self._evidence_hold(cmd)
        raise CommandRefused(f"unknown command {name!r}")  # pragma: no cover - checked in _verify

    def _evidence_hold(self, cmd: dict[str, Any]) -> dict[str, Any]:
        from firmware.retention import HoldError

        holds, args = _need(self.h.holds, "evidence_hold"), cmd["args"]
        case = cmd.get("case")
        if not case:
            raise CommandRefused("evidence_hold: the command must carry the case number")
        try:
            if args.get("release") is True:
                return holds.release(args.get("records"), case, f"remote:{cmd['issuer']}")
            return holds.hold(args.get("records"), case, f"remote:{cmd['issuer']}")
        except HoldError as exc:
            raise CommandRefused(f"evidence_hold: {exc}") from None

    def _set_config(self, args: dict[str, Any]) -> dict[str, Any]:
        h = self.h
        old = _need(h.get_config, "set_config")()
        if isinstance(args.get("config"), dict) and "patch" not in args:
            data = args["config"]
        elif isinstance(args.get("patch"), dict) and "config" not in args:
            data = _merge(old.model_dump(mode="json"), args["patch"])
        else:
            raise CommandRefused("set_config: give args.config (whole) or args.patch (changes), as an object")
        try:
            new = parse(data, "set_config")
        except ConfigError as exc:
            raise CommandRefused(str(exc)) from None
        if new.device.id != old.device.id or new.device.agency != old.device.agency:
            raise CommandRefused("set_config: device.id and device.agency are provisioned, not configured")
        apply = _need(h.apply_config, "set_config")  # checked after validation: a bad config is named first
        applied = apply(new) or {}
        healthy = h.health_check() if h.health_check is not None else True
        if not healthy:
            apply(old)
            return {"applied": False, "rolled_back": True, **applied}
        return {"applied": True, "rolled_back": False, **applied}

    # -- answers -------------------------------------------------------------
    def _refuse(self, cmd: dict[str, Any], error: str, now: datetime, accepted: bool = False) -> bytes:
        self._audit(cmd, "cmd_failed" if accepted else "cmd_refused", {"error": error[:500]})
        return self._result(cmd, False, error, None, now)

    def _result(self, cmd: dict[str, Any], ok: bool, error: str | None, result: Any, now: datetime) -> bytes:
        out = {
            "v": 1,
            "device": self.device_id,
            "nonce": cmd.get("nonce") if isinstance(cmd.get("nonce"), str) else None,
            "command": cmd.get("command") if isinstance(cmd.get("command"), str) else None,
            "ok": ok,
            "error": error,
            "result": result,
            "time": iso(now),
        }
        return json.dumps(out, default=str, separators=(",", ":")).encode()

    def _audit(self, cmd: dict[str, Any], action: str, detail: dict[str, Any]) -> None:
        actor = cmd.get("issuer") if isinstance(cmd.get("issuer"), str) else "unknown"
        purpose = cmd.get("purpose") if isinstance(cmd.get("purpose"), str) else None
        case = cmd.get("case") if isinstance(cmd.get("case"), str) else None
        name = cmd.get("command") if isinstance(cmd.get("command"), str) else None
        self.audit.record(f"remote:{actor}"[:128], action, purpose=purpose, case=case,
                          detail={"command": name, "nonce": cmd.get("nonce") if isinstance(cmd.get("nonce"), str)
                                  else None, **detail})


def _peek(payload: bytes) -> dict[str, Any]:
    """Echo fields of a command that failed verification, so the sender can match the refusal.
    The issuer is marked unverified: nobody is blamed in the audit log on an unchecked claim."""
    try:
        inner = json.loads(json.loads(payload)["payload"])
    except Exception:  # anything malformed: nothing to echo
        return {}
    if not isinstance(inner, dict):
        return {}
    out = {k: inner[k][:128] for k in ("nonce", "command") if isinstance(inner.get(k), str)}
    if isinstance(inner.get("issuer"), str):
        out["issuer"] = "unverified:" + inner["issuer"][:64]
    return out


def _need(fn: Callable[..., Any] | None, name: str) -> Callable[..., Any]:
    if fn is None:
        raise CommandRefused(f"{name}: not available on this device")
    return fn


def _merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in patch.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _redact(args: dict[str, Any]) -> dict[str, Any]:
    """Hot lists carry plate data: the audit log notes that one came, not what it held."""
    return {k: ("<signed hot list>" if k == "hotlist" else v) for k, v in args.items()}


def _short(obj: Any) -> Any:
    text = json.dumps(obj, default=str)
    return obj if len(text) <= 1500 else text[:1500] + "..."


# -- the administrator's side ------------------------------------------------------


def make_command(
    key: Ed25519PrivateKey,
    command: str,
    device: str,
    agency: str,
    issuer: str,
    args: dict[str, Any] | None = None,
    lifetime: timedelta = timedelta(minutes=10),
    purpose: str = "maintenance",
    case: str | None = None,
    now: datetime | None = None,
    nonce: str | None = None,
) -> bytes:
    """Sign one command (used by `polewatch fleet` and tests)."""
    import secrets

    now = now or _utcnow()
    payload: dict[str, Any] = {
        "v": 1,
        "command": command,
        "args": args or {},
        "device": device,
        "agency": agency,
        "nonce": nonce or secrets.token_hex(16),
        "issued": iso(now),
        "expires": iso(now + lifetime),
        "issuer": issuer,
        "purpose": purpose,
    }
    if case is not None:
        payload["case"] = case
    return seal(payload, key, FORMAT)


def admin_keys_from_dir(keydir: Path | str) -> Callable[[], dict[str, Ed25519PublicKey]]:
    """Trusted admin keys from `<keydir>/admin/*.pub` (firmware.keys layout), re-read on each use
    so a rotation takes effect at once."""
    from firmware import keys as K
    from firmware.envelope import key_id

    def load() -> dict[str, Ed25519PublicKey]:
        found = K.DeviceKeys.load(keydir).admin_keys if (Path(keydir) / "device.key").exists() else {}
        return {key_id(k): k for k in found.values()}

    return load


def key_rotation(keydir: Path | str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The `rotate_keys` handler over the device key directory: add or remove admin keys,
    install a new department sealing key. Refuses to leave the device without an admin key."""
    from firmware import keys as K

    d = Path(keydir)

    def rotate(args: dict[str, Any]) -> dict[str, Any]:
        extra = sorted(set(args) - {"admin_add", "admin_remove", "department_key"})
        if extra:
            raise CommandRefused(f"rotate_keys: unknown args {extra}")
        add = args.get("admin_add", {})
        remove = args.get("admin_remove", [])
        dept = args.get("department_key")
        if not isinstance(add, dict) or not all(isinstance(v, str) for v in add.values()):
            raise CommandRefused("rotate_keys: admin_add must map names to PEM public keys")
        if not isinstance(remove, list) or not all(isinstance(v, str) and K.KID_RE.match(v) for v in remove):
            raise CommandRefused("rotate_keys: admin_remove must list admin key names")
        current = set(K.DeviceKeys.load(d).admin_keys)
        if not (current | set(add)) - set(remove):
            raise CommandRefused("rotate_keys: refusing to remove every admin key (the device would be unmanageable)")
        done: dict[str, Any] = {"admin_added": [], "admin_removed": [], "department_kid": None}
        try:
            for name, pem in add.items():
                K.install_named_public(d, "admin", name, pem.encode())
                done["admin_added"].append(name)
            for name in remove:
                p = d / "admin" / f"{name}.pub"
                if p.exists():
                    p.unlink()
                    done["admin_removed"].append(name)
            if dept is not None:
                if not isinstance(dept, dict) or not isinstance(dept.get("pem"), str):
                    raise CommandRefused("rotate_keys: department_key must be {kid, pem}")
                done["department_kid"] = K.install_department_key(d, dept["pem"].encode(), dept.get("kid"))
        except K.KeyFileError as exc:
            raise CommandRefused(f"rotate_keys: {exc}") from None
        return done

    return rotate


def journal_logs(unit: str = "polewatch") -> Callable[[int], list[str]]:
    """The `fetch_logs` handler on an appliance: the service's journal (no plate data is logged)."""
    import subprocess

    def fetch(lines: int) -> list[str]:
        try:
            out = subprocess.run(["journalctl", "-u", unit, "-n", str(lines), "-o", "cat", "--no-pager"],
                                 capture_output=True, text=True, timeout=20, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise CommandRefused(f"fetch_logs: journalctl unavailable: {exc}") from None
        return out.stdout.splitlines()[-lines:]

    return fetch


__all__ = [
    "COMMANDS", "CommandProcessor", "CommandRefused", "FORMAT", "Handlers", "NonceStore", "admin_keys_from_dir",
    "journal_logs", "key_rotation", "make_command",
]
