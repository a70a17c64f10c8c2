"""Annual report: figures from a real audit log and usage counters; HTML is self-contained and escaped."""

from __future__ import annotations

from datetime import datetime, timezone

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from firmware.audit import AuditLog
from firmware.report import UsageCounters, build, render_html, write
from tests.policykit import Clock


def test_report_figures(tmp_path):
    clock = Clock(datetime(2026, 3, 1, tzinfo=timezone.utc))
    log = AuditLog(tmp_path / "audit.log", Ed25519PrivateKey.generate(), clock=clock)
    for purpose in ("stolen_vehicle", "stolen_vehicle", "missing_person"):
        log.record("device", "hit", purpose=purpose, case="c")
    log.record("ofc.lee", "access", purpose="stolen_vehicle", case="24-1")
    log.record("ofc.lee", "login", purpose="stolen_vehicle", case="24-1")
    log.record("remote:it.kim", "cmd_accepted", purpose="maintenance", detail={"command": "start_update"})
    log.record("<script>alert(1)</script>", "access", purpose="audit")
    log.record("cli", "audit_verify", purpose="audit")
    log.record("remote:x", "cmd_refused", detail={"error": "expired"})
    clock.t = datetime(2025, 12, 31, tzinfo=timezone.utc)
    log.record("old", "access", purpose="audit")  # another year: not counted
    usage = UsageCounters(tmp_path / "usage.db")
    usage.add(reads=100, alerts=3, uptime_s=86400 * 30, when=datetime(2026, 1, 15, tzinfo=timezone.utc))
    usage.add(reads=50, when=datetime(2026, 3, 2, tzinfo=timezone.utc))
    usage.add(reads=7, when=datetime(2025, 3, 2, tzinfo=timezone.utc))
    rep = build(2026, log.entries(), usage.year_stats(2026), log.verify().to_json(), "pole-1")
    assert rep["reads"] == 150 and rep["reads_by_month"][0] == 100 and rep["reads_by_month"][2] == 50
    assert rep["alerts"] == 3
    assert rep["hits_by_purpose"]["stolen_vehicle"] == 2 and rep["hits_by_purpose"]["missing_person"] == 1
    assert rep["hits_by_purpose"]["wanted_person"] == 0
    assert rep["accesses_by_user"] == {"<script>alert(1)</script>": 1, "ofc.lee": 2, "remote:it.kim": 1}
    assert rep["accesses_by_purpose"]["stolen_vehicle"] == 2
    assert len(rep["updates"]) == 1 and rep["audits_run"] == {"audit_verify": 1}
    assert rep["refusals"] == {"cmd_refused": 1}
    assert rep["uptime_ratio"] == round(30 / 365, 5) and rep["audit_log"]["ok"]
    html = render_html(rep)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert html.count("<svg") == 4 and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    j, h = write(rep, tmp_path / "out")
    assert j.exists() and h.read_text() == html
