"""Accounts: argon2 hashes, lockout, roles (IT never sees plates), training, purpose and case, all audited."""

from __future__ import annotations

from datetime import date

import pytest

from firmware.access import Accounts, AccessDenied
from firmware.config import AccessConfig
from tests.policykit import Clock, actions, audit_log

FAST = AccessConfig(argon2_time_cost=1, argon2_memory_kib=64, max_failures=3, lockout_minutes=10)
PW = "correct horse battery"


@pytest.fixture()
def acc(tmp_path):
    clock = Clock()
    a = Accounts(tmp_path / "access.db", audit_log(tmp_path, clock=clock), FAST, clock)
    a.bootstrap("chief", PW, date(2026, 1, 10), date(2027, 1, 10))
    return a


def admin(acc):
    return acc.login("chief", PW, "audit")


def test_hash_is_argon2_and_not_the_password(acc):
    (h,) = acc._db.execute("SELECT hash FROM users").fetchone()
    assert h.startswith("$argon2id$") and PW not in h


def test_bootstrap_only_once(acc):
    with pytest.raises(AccessDenied, match="accounts exist"):
        acc.bootstrap("mallory", PW, date(2026, 1, 1), date(2027, 1, 1))


def test_operator_login_needs_purpose_case_and_training(acc):
    s = admin(acc)
    acc.add_user(s, "ofc.lee", "operator", PW)
    with pytest.raises(AccessDenied, match="training"):
        acc.login("ofc.lee", PW, "stolen_vehicle", "24-1")
    acc.record_training(s, "ofc.lee", date(2026, 6, 1), date(2027, 6, 1))
    with pytest.raises(AccessDenied, match="case"):
        acc.login("ofc.lee", PW, "stolen_vehicle")
    with pytest.raises(AccessDenied, match="not allowed"):
        acc.login("ofc.lee", PW, "parking", "P-1")
    op = acc.login("ofc.lee", PW, "stolen_vehicle", "24-1")
    op.access("plates", "search reads", {"query": "partial 7AB"})
    last = list(acc.audit.entries())[-1]
    assert (last["actor"], last["action"], last["purpose"], last["case"]) == ("ofc.lee", "access", "stolen_vehicle", "24-1")
    with pytest.raises(AccessDenied):
        op.require("users")


def test_it_maintenance_never_sees_plates(acc):
    s = admin(acc)
    acc.add_user(s, "it.kim", "it_maintenance", PW)
    acc.record_training(s, "it.kim", date(2026, 6, 1), date(2027, 6, 1))
    with pytest.raises(AccessDenied, match="'maintenance' only"):
        acc.login("it.kim", PW, "investigation", "24-9")
    it = acc.login("it.kim", PW, "maintenance")
    it.access("settings", "camera exposure")
    with pytest.raises(AccessDenied, match="never sees plate data"):
        it.access("plates", "view reads")
    assert actions(acc.audit)[-1] == "access_denied"


def test_lockout_after_failures_then_expiry(acc):
    for _ in range(3):
        with pytest.raises(AccessDenied, match="wrong password"):
            acc.login("chief", "wrong password!!", "audit")
    with pytest.raises(AccessDenied, match="locked until"):
        acc.login("chief", PW, "audit")  # right password, still locked
    assert "lockout" in actions(acc.audit)
    acc.clock.advance(minutes=11)
    assert acc.login("chief", PW, "audit").role == "administrator"


def test_expired_training_and_session(acc):
    s = admin(acc)
    acc.clock.advance(minutes=31)
    with pytest.raises(AccessDenied, match="session expired"):
        s.require("audit")
    acc.clock.advance(days=400)
    with pytest.raises(AccessDenied, match="training"):
        admin(acc)


def test_unknown_user_same_message_and_audited(acc):
    with pytest.raises(AccessDenied, match="unknown user or wrong password"):
        acc.login("nobody", PW, "audit")
    assert list(acc.audit.entries())[-1]["detail"]["reason"] == "unknown or disabled user"


def test_weak_password_and_bad_role(acc):
    s = admin(acc)
    with pytest.raises(AccessDenied, match="at least 12"):
        acc.add_user(s, "x", "operator", "short")
    with pytest.raises(AccessDenied, match="role"):
        acc.add_user(s, "x", "superuser", PW)


def test_users_list_has_no_hashes_and_log_verifies(acc):
    s = admin(acc)
    acc.add_user(s, "ofc.lee", "operator", PW)
    rows = acc.users()
    assert {r["name"] for r in rows} == {"chief", "ofc.lee"} and all("hash" not in r for r in rows)
    assert acc.audit.verify().ok
