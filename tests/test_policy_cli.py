"""The policy CLIs end to end on a real device directory: keys, hot lists, users, audit verify, report."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from firmware import keys as K
from firmware.cli import main
from tests.policykit import entry

PW = "correct horse battery"


@pytest.fixture()
def device(tmp_path, monkeypatch):
    data = tmp_path / "data"
    cfgfile = tmp_path / "polewatch.toml"
    cfgfile.write_text(f'[device]\nid = "pole-9"\ndata_dir = "{data}"\n'
                       "[access]\nargon2_time_cost = 1\nargon2_memory_kib = 64\n")
    K.init_device(data / "keys", "pole-9", "demo-pd")
    monkeypatch.setenv("POLEWATCH_PASSWORD", PW)
    monkeypatch.setenv("POLEWATCH_NEW_PASSWORD", PW)
    return tmp_path, ["--config", str(cfgfile)]


def out(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


def test_full_policy_workflow(device, capsys):
    tmp, c = device
    assert main(c + ["users", "bootstrap", "chief", "--trained", "2026-01-05", "--training-expires", "2027-01-05"]) == 0
    assert main(c + ["users", "add", "ofc.lee", "--role", "operator", "--as", "chief"]) == 0
    # no training yet: the operator cannot check plates
    assert main(c + ["hotlist", "check", "ABC123", "--as", "ofc.lee", "--case", "24-7"]) == 2
    assert "training" in capsys.readouterr().err
    assert main(c + ["users", "train", "ofc.lee", "--completed", "2026-06-01", "--expires", "2027-06-01",
                     "--as", "chief"]) == 0
    # the department makes and signs a list; the device trusts its key
    assert main(["hotlist", "keygen", "--out", str(tmp / "dept")]) == 0
    (tmp / "entries.json").write_text(json.dumps([entry("ABC123"), entry("TICKET1", "parking")]))
    assert main(["hotlist", "sign", str(tmp / "entries.json"), "--key", str(tmp / "dept.pem"), "--version", "3",
                 "-o", str(tmp / "list.json")]) == 0
    signed = out(capsys)[-1]
    assert signed["entries"] == 1 and "not allowed by the ALPR policy" in signed["refused"][0]
    assert main(c + ["hotlist", "trust", str(tmp / "dept.pub"), "--name", "hq"]) == 0
    capsys.readouterr()
    assert main(c + ["hotlist", "install", str(tmp / "list.json"), "--as", "chief"]) == 0
    installed = json.loads(capsys.readouterr().out)
    assert installed["entries"] == 1 and installed["refused_entries"] == 1
    assert main(c + ["hotlist", "check", "A8C123", "XYZ999", "--as", "ofc.lee", "--case", "24-7"]) == 0
    res = out(capsys)
    assert res[0]["hits"][0]["pattern"] == "ABC123" and res[1]["hits"] == []
    from firmware.audit import AuditLog

    q = [e for e in AuditLog(tmp / "data" / "audit" / "audit.log", None).entries() if e["action"] == "access"][-1]
    # 1798.90.52(a): date and time, the plate numbers queried, the user name, the purpose (and the case)
    assert q["actor"] == "ofc.lee" and q["detail"]["query"] == ["A8C123", "XYZ999"] and q["time"]
    assert q["purpose"] == "investigation" and q["case"] == "24-7"
    assert main(c + ["hotlist", "status"]) == 0
    assert "ABC123" not in capsys.readouterr().out  # status shows counts, never plates
    # the audit chain is intact, then a one-byte edit is caught
    assert main(c + ["audit", "verify"]) == 0
    verified = json.loads(capsys.readouterr().out)
    assert verified["ok"] and verified["entries"] > 8
    data = tmp / "data"
    copy = tmp / "copy.log"  # headquarters checks a copy with the device's public key
    (tmp / "copy.log.head").write_bytes((data / "audit" / "audit.log.head").read_bytes())
    copy.write_bytes((data / "audit" / "audit.log").read_bytes().replace(b'"ofc.lee"', b'"ofc.lie"', 1))
    assert main(["audit", "verify", "--log", str(copy), "--public-key", str(data / "keys" / "device.pub")]) == 1
    assert not json.loads(capsys.readouterr().out)["ok"]
    # the report: accesses by user and purpose, refused entries, chain state
    year = datetime.now(timezone.utc).year  # the audit log is stamped with the wall clock
    assert main(c + ["report", "--year", str(year), "--out", str(tmp / "rep")]) == 0
    paths = json.loads(capsys.readouterr().out)
    rep = json.loads(Path(paths["json"]).read_text())
    users = rep["accesses_by_user"]
    assert users["ofc.lee"] >= 2 and users["chief"] >= 2
    assert rep["refusals"]["hotlist_entry_refused"] == 1 and rep["audits_run"]["audit_verify"] == 1  # the copy check is not the device's
    assert rep["audit_log"]["ok"] is True
    html = Path(paths["html"]).read_text()
    assert "<svg" in html and f"ALPR annual usage report {year}" in html


def test_audit_verify_copy_and_errors(device, capsys, tmp_path):
    tmp, c = device
    assert main(c + ["audit", "verify"]) == 2  # no log yet
    assert "no audit log" in capsys.readouterr().err
    assert main(["audit", "verify", "--log", str(tmp / "nope"), "--public-key", str(tmp / "nope.pub")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_users_need_admin_and_report_year_checked(device, capsys):
    tmp, c = device
    main(c + ["users", "bootstrap", "chief", "--trained", "2026-01-05", "--training-expires", "2027-01-05"])
    assert main(c + ["users", "add", "x", "--role", "operator"]) == 2
    assert "--as" in capsys.readouterr().err
    assert main(c + ["users", "bootstrap", "eve", "--trained", "2026-01-05", "--training-expires", "2027-01-05"]) == 2
    assert main(c + ["report", "--year", "99"]) == 2


def test_unwritable_audit_log_refuses_with_one_line(device, capsys):
    tmp, c = device
    (tmp / "data" / "audit").mkdir(parents=True)
    (tmp / "data" / "audit" / "audit.log").mkdir()  # unusable, as on a broken disk
    assert main(c + ["users", "bootstrap", "chief", "--trained", "2026-01-05", "--training-expires", "2027-01-05"]) == 2
    err = capsys.readouterr().err
    assert "audit log cannot be written" in err and "Traceback" not in err
    (tmp / "data" / "audit" / "audit.log").rmdir()  # repaired: nothing happened meanwhile, bootstrap works
    assert main(c + ["users", "bootstrap", "chief", "--trained", "2026-01-05", "--training-expires", "2027-01-05"]) == 0
