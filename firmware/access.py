"""Local accounts: who may touch the device's data or settings, and why.

Civil Code 1798.90.51 and the department policy require that only trained,
authorised members reach ALPR data, each access recorded. Passwords are
argon2id hashes; repeated failures lock the account; a login needs current
training (completion and expiry dates on record) and states a purpose and,
where the purpose requires one, a case number, which every audit entry of the
session carries. IT maintenance configures the device but never sees plate
data: its role lacks the `plates` permission and may only log in for
"maintenance".
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from firmware.config import AccessConfig
from firmware.hotlist.manager import Auditor
from firmware.purposes import PurposeRefused, check_access_purpose

ROLES = ("administrator", "operator", "it_maintenance")
PERMISSIONS: dict[str, frozenset[str]] = {
    # plates: see reads, alerts, images; hotlist: manage lists; settings: configuration;
    # users: accounts and training; audit: read and verify the audit log; report: annual report
    "administrator": frozenset({"plates", "hotlist", "settings", "users", "audit", "report"}),
    "operator": frozenset({"plates", "hotlist"}),
    "it_maintenance": frozenset({"settings", "report"}),
}
MIN_PASSWORD = 12
_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, hash TEXT NOT NULL,
    failed INTEGER NOT NULL DEFAULT 0, locked_until REAL NOT NULL DEFAULT 0,
    disabled INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS training (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, course TEXT NOT NULL,
    completed TEXT NOT NULL, expires TEXT NOT NULL, recorded_by TEXT NOT NULL, recorded REAL NOT NULL);
"""


class AccessDenied(Exception):
    """Login or access refused; the message says why (without saying which of name/password was wrong)."""


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Session:
    """A logged-in member with a stated purpose; every access goes through `access`."""

    accounts: Accounts
    name: str
    role: str
    purpose: str
    case: str | None
    expires: datetime

    def can(self, permission: str) -> bool:
        return permission in PERMISSIONS[self.role]

    def require(self, permission: str, what: str = "") -> None:
        now = self.accounts.clock()
        if now >= self.expires:
            self.accounts._audit(self.name, "access_denied", self.purpose, self.case,
                                 {"permission": permission, "what": what, "reason": "session expired"})
            raise AccessDenied("session expired; log in again")
        if not self.can(permission):
            self.accounts._audit(self.name, "access_denied", self.purpose, self.case,
                                 {"permission": permission, "what": what, "role": self.role})
            raise AccessDenied(f"role {self.role} may not use {permission!r}" +
                               (" (IT maintenance never sees plate data)" if permission == "plates" else ""))

    def access(self, permission: str, what: str, detail: dict[str, Any] | None = None) -> None:
        """Check the permission and record the access (name, time, purpose, case) before it happens."""
        self.require(permission, what)
        self.accounts._audit(self.name, "access", self.purpose, self.case,
                             {"permission": permission, "what": what, **(detail or {})})


class Accounts:
    def __init__(
        self,
        path: Path | str,
        audit: Auditor,
        cfg: AccessConfig | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.cfg = cfg or AccessConfig()
        self.audit, self.clock = audit, clock
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._ph = PasswordHasher(time_cost=self.cfg.argon2_time_cost, memory_cost=self.cfg.argon2_memory_kib,
                                  parallelism=self.cfg.argon2_parallelism)
        self._dummy = self._ph.hash("not a password of anyone")

    # -- accounts ----------------------------------------------------------------
    def empty(self) -> bool:
        return self._db.execute("SELECT count(*) FROM users").fetchone()[0] == 0

    def bootstrap(self, name: str, password: str, trained_on: date, training_expires: date) -> None:
        """Create the first administrator (only while there is no account at all)."""
        with self._lock:
            if not self.empty():
                raise AccessDenied("accounts exist already; an administrator must add users")
            if training_expires <= trained_on:
                raise AccessDenied("training expiry must be after its completion")
            _check_name(name)
            _check_password(password)
            self._audit(name, "user_bootstrap", None, None, {"user": name, "role": "administrator"})
            self._insert(name, "administrator", password)
            self._training(name, "ALPR policy", trained_on, training_expires, "bootstrap")

    def add_user(self, by: Session, name: str, role: str, password: str) -> None:
        by.require("users", f"add user {name}")
        if role not in ROLES:
            raise AccessDenied(f"role {role!r} is not one of {', '.join(ROLES)}")
        with self._lock:
            if self._row(name) is not None:
                raise AccessDenied(f"user {name!r} exists")
            _check_name(name)
            _check_password(password)
            self._audit(by.name, "user_added", by.purpose, by.case, {"user": name, "role": role})
            self._insert(name, role, password)

    def set_password(self, by: Session, name: str, password: str) -> None:
        if by.name != name:
            by.require("users", f"password of {name}")
        _check_password(password)
        with self._lock:
            if self._row(name) is None:
                raise AccessDenied(f"no user {name!r}")
            self._audit(by.name, "password_set", by.purpose, by.case, {"user": name})
            self._db.execute("UPDATE users SET hash=?, failed=0, locked_until=0 WHERE name=?",
                             (self._ph.hash(password), name))

    def disable(self, by: Session, name: str) -> None:
        by.require("users", f"disable {name}")
        self._audit(by.name, "user_disabled", by.purpose, by.case, {"user": name})
        self._db.execute("UPDATE users SET disabled=1 WHERE name=?", (name,))

    def unlock(self, by: Session, name: str) -> None:
        by.require("users", f"unlock {name}")
        self._audit(by.name, "user_unlocked", by.purpose, by.case, {"user": name})
        self._db.execute("UPDATE users SET failed=0, locked_until=0 WHERE name=?", (name,))

    def record_training(self, by: Session, name: str, completed: date, expires: date,
                        course: str = "ALPR policy") -> None:
        by.require("users", f"training of {name}")
        if expires <= completed:
            raise AccessDenied("training expiry must be after its completion")
        if self._row(name) is None:
            raise AccessDenied(f"no user {name!r}")
        self._audit(by.name, "training_recorded", by.purpose, by.case,
                    {"user": name, "course": course, "completed": completed.isoformat(),
                     "expires": expires.isoformat()})
        self._training(name, course, completed, expires, by.name)

    def users(self) -> list[dict[str, Any]]:
        """Accounts with role, lock state and training expiry (never hashes)."""
        out = []
        for name, role, failed, locked, disabled in self._db.execute(
            "SELECT name, role, failed, locked_until, disabled FROM users ORDER BY name"
        ):
            exp = self.training_expires(name)
            out.append({"name": name, "role": role, "failed_logins": failed,
                        "locked": locked > self.clock().timestamp(), "disabled": bool(disabled),
                        "training_expires": exp.isoformat() if exp else None})
        return out

    def training_expires(self, name: str) -> date | None:
        row = self._db.execute("SELECT max(expires) FROM training WHERE name=?", (name,)).fetchone()
        return date.fromisoformat(row[0]) if row and row[0] else None

    # -- login -------------------------------------------------------------------
    def login(self, name: str, password: str, purpose: str, case: str | None = None) -> Session:
        """A session for a trained, unlocked member with an allowed purpose; AccessDenied (audited) otherwise."""
        now = self.clock()
        who = str(name)[:64]
        with self._lock:
            row = self._row(who)
            if row is None or row["disabled"]:
                _verify(self._ph, self._dummy, password)  # same work whether or not the name exists
                self._audit(who, "login_failed", purpose, case, {"reason": "unknown or disabled user"})
                raise AccessDenied("unknown user or wrong password")
            if row["locked_until"] > now.timestamp():
                until = datetime.fromtimestamp(row["locked_until"], timezone.utc).isoformat(timespec="seconds")
                self._audit(who, "login_failed", purpose, case, {"reason": "locked"})
                raise AccessDenied(f"account locked until {until} after repeated failures")
            if not _verify(self._ph, row["hash"], password):
                failed = row["failed"] + 1
                locked = 0.0
                if failed >= self.cfg.max_failures:
                    locked = (now + timedelta(minutes=self.cfg.lockout_minutes)).timestamp()
                    failed = 0
                self._db.execute("UPDATE users SET failed=?, locked_until=? WHERE name=?", (failed, locked, who))
                self._audit(who, "lockout" if locked else "login_failed", purpose, case,
                            {"reason": "wrong password", "failures": failed if not locked else self.cfg.max_failures})
                raise AccessDenied("unknown user or wrong password")
            self._db.execute("UPDATE users SET failed=0, locked_until=0 WHERE name=?", (who,))
            if self._ph.check_needs_rehash(row["hash"]):
                self._db.execute("UPDATE users SET hash=? WHERE name=?", (self._ph.hash(password), who))
        expires = self.training_expires(who)
        if expires is None or expires < now.date():
            self._audit(who, "login_denied", purpose, case,
                        {"reason": "no current training", "training_expires": expires.isoformat() if expires else None})
            raise AccessDenied("no current ALPR training on record; see the training coordinator")
        try:
            check_access_purpose(purpose, case)
        except PurposeRefused as exc:
            self._audit(who, "login_denied", str(purpose)[:64], case, {"reason": str(exc)})
            raise AccessDenied(str(exc)) from None
        if row["role"] == "it_maintenance" and purpose != "maintenance":
            self._audit(who, "login_denied", purpose, case, {"reason": "IT maintenance logs in for maintenance only"})
            raise AccessDenied("IT maintenance may log in for purpose 'maintenance' only (no plate data)")
        self._audit(who, "login", purpose, case, {"role": row["role"]})
        return Session(self, who, row["role"], purpose, case, now + timedelta(minutes=self.cfg.session_minutes))

    # -- internals ---------------------------------------------------------------
    def _row(self, name: str) -> dict[str, Any] | None:
        cur = self._db.execute("SELECT name, role, hash, failed, locked_until, disabled FROM users WHERE name=?",
                               (name,))
        r = cur.fetchone()
        return None if r is None else dict(zip(("name", "role", "hash", "failed", "locked_until", "disabled"), r))

    def _insert(self, name: str, role: str, password: str) -> None:
        _check_name(name)
        _check_password(password)
        self._db.execute("INSERT INTO users(name, role, hash, created) VALUES (?,?,?,?)",
                         (name, role, self._ph.hash(password), self.clock().timestamp()))

    def _training(self, name: str, course: str, completed: date, expires: date, by: str) -> None:
        self._db.execute(
            "INSERT INTO training(name, course, completed, expires, recorded_by, recorded) VALUES (?,?,?,?,?,?)",
            (name, course, completed.isoformat(), expires.isoformat(), by, self.clock().timestamp()))

    def _audit(self, actor: str, action: str, purpose: str | None, case: str | None,
               detail: dict[str, Any]) -> None:
        self.audit.record(actor, action, purpose=purpose, case=case, detail=detail)

    def close(self) -> None:
        self._db.close()


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name.isascii() or not 1 <= len(name) <= 64 or not name.replace(
            ".", "").replace("-", "").replace("_", "").isalnum():
        raise AccessDenied("user name: 1-64 letters, digits, '.', '-' or '_'")


def _check_password(password: str) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise AccessDenied(f"password must have at least {MIN_PASSWORD} characters")


def _verify(ph: PasswordHasher, hashed: str, password: str) -> bool:
    try:
        return ph.verify(hashed, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
