"""The annual usage report the policy requires (Civil Code 1798.90.51(b)(2)(H)-style
accountability): reads, hits by purpose, alerts, accesses by user and purpose,
audits run, updates and uptime, as JSON and as a self-contained HTML page
with inline SVG charts.

Inputs: the audit log (verified first; the report says whether the chain is
intact) and usage figures from a `StatsSource`. The outbox forgets records
after delivery, so the device keeps day counters (`UsageCounters`) that the
app bumps for each read, alert and minute of uptime.
"""

from __future__ import annotations

import calendar
import html
import json
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from firmware.purposes import ACCESS_PURPOSES, HOTLIST_PURPOSES

ACCESS_ACTIONS = {"access", "login", "cmd_accepted"}
AUDIT_ACTIONS = {"audit_verify", "report"}


class StatsSource(Protocol):
    """Usage figures for one calendar year (UTC)."""

    def year_stats(self, year: int) -> dict[str, Any]:
        """{"reads": int, "reads_by_month": [12 ints], "alerts": int, "uptime_s": float}"""
        ...


class UsageCounters:
    """Per-day counters in SQLite; the app calls `add` as reads, alerts and uptime accrue."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS days (day TEXT PRIMARY KEY, reads INTEGER NOT NULL DEFAULT 0, "
                         "alerts INTEGER NOT NULL DEFAULT 0, uptime_s REAL NOT NULL DEFAULT 0)")
        self._lock = threading.Lock()

    def add(self, reads: int = 0, alerts: int = 0, uptime_s: float = 0.0, when: datetime | None = None) -> None:
        day = (when or datetime.now(timezone.utc)).astimezone(timezone.utc).date().isoformat()
        with self._lock:
            self._db.execute(
                "INSERT INTO days(day, reads, alerts, uptime_s) VALUES (?,?,?,?) ON CONFLICT(day) DO UPDATE SET "
                "reads=reads+excluded.reads, alerts=alerts+excluded.alerts, uptime_s=uptime_s+excluded.uptime_s",
                (day, reads, alerts, uptime_s))

    def year_stats(self, year: int) -> dict[str, Any]:
        by_month = [0] * 12
        reads = alerts = 0
        uptime = 0.0
        for day, r, a, u in self._db.execute("SELECT day, reads, alerts, uptime_s FROM days WHERE day LIKE ?",
                                              (f"{year:04d}-%",)):
            by_month[int(day[5:7]) - 1] += r
            reads, alerts, uptime = reads + r, alerts + a, uptime + u
        return {"reads": reads, "reads_by_month": by_month, "alerts": alerts, "uptime_s": uptime}

    def close(self) -> None:
        self._db.close()


def build(year: int, audit_entries: Iterable[dict[str, Any]], stats: dict[str, Any],
          audit_check: dict[str, Any] | None = None, device: str = "", now: datetime | None = None) -> dict[str, Any]:
    """The report as a JSON-ready dict."""
    hits: Counter[str] = Counter()
    accesses: Counter[tuple[str, str]] = Counter()
    audits: Counter[str] = Counter()
    refusals: Counter[str] = Counter()
    updates: list[dict[str, Any]] = []
    logins_failed = lockouts = 0
    for e in audit_entries:
        t = str(e.get("time", ""))
        if not t.startswith(f"{year:04d}-"):
            continue
        action, purpose = e.get("action"), e.get("purpose")
        detail = e.get("detail") if isinstance(e.get("detail"), dict) else {}
        if action == "hit":
            hits[purpose or "unknown"] += 1
        elif action in ACCESS_ACTIONS:
            accesses[(str(e.get("actor")), purpose or "none")] += 1
        if action in AUDIT_ACTIONS:
            audits[action] += 1
        if action in ("cmd_refused", "hotlist_refused", "hotlist_entry_refused", "hotlist_entries_refused",
                      "access_denied", "login_denied"):
            refusals[action] += 1
        if action == "login_failed":
            logins_failed += 1
        if action == "lockout":
            lockouts += 1
        if (isinstance(action, str) and (action.startswith("update") or action.startswith("ota"))) or (
                action == "cmd_accepted" and detail.get("command") == "start_update"):
            updates.append({"time": t, "action": action, "actor": e.get("actor"), "detail": detail})
    days = 366 if calendar.isleap(year) else 365
    uptime_s = float(stats.get("uptime_s", 0.0))
    return {
        "report": "polewatch-annual-usage/1",
        "year": year,
        "device": device,
        "generated": (now or datetime.now(timezone.utc)).isoformat(timespec="seconds"),
        "audit_log": audit_check or {"ok": None, "entries": None, "errors": []},
        "reads": int(stats.get("reads", 0)),
        "reads_by_month": [int(x) for x in stats.get("reads_by_month", [0] * 12)],
        "alerts": int(stats.get("alerts", sum(hits.values()))),
        "hits_by_purpose": {p: hits.get(p, 0) for p in HOTLIST_PURPOSES} | {
            p: n for p, n in hits.items() if p not in HOTLIST_PURPOSES},
        "accesses": [{"user": u, "purpose": p, "count": n} for (u, p), n in sorted(accesses.items())],
        "accesses_by_user": _total(accesses, 0),
        "accesses_by_purpose": _total(accesses, 1),
        "audits_run": dict(audits),
        "updates": updates,
        "refusals": dict(refusals),
        "failed_logins": logins_failed,
        "lockouts": lockouts,
        "uptime_s": round(uptime_s, 1),
        "uptime_ratio": round(min(uptime_s / (days * 86400), 1.0), 5),
    }


def _total(counts: Counter[tuple[str, str]], axis: int) -> dict[str, int]:
    out: Counter[str] = Counter()
    for key, n in counts.items():
        out[key[axis]] += n
    return dict(sorted(out.items()))


# -- HTML ---------------------------------------------------------------------------


def _bars(title: str, items: list[tuple[str, float]], width: int = 640) -> str:
    """A horizontal bar chart as inline SVG (no scripts, no external files)."""
    bar_h, gap, label_w = 18, 6, 260
    height = max(1, len(items)) * (bar_h + gap) + 30
    top = max([v for _, v in items] + [1])
    rows = [f'<text x="0" y="16" font-weight="bold">{html.escape(title)}</text>']
    for i, (label, v) in enumerate(items):
        y = 26 + i * (bar_h + gap)
        w = (width - label_w - 60) * (v / top)
        rows.append(f'<text x="0" y="{y + 13}" font-size="12">{html.escape(label)}</text>'
                    f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="#2b6cb0"/>'
                    f'<text x="{label_w + w + 4:.1f}" y="{y + 13}" font-size="12">{v:g}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{html.escape(title)}" '
            f'width="{width}" height="{height}" font-family="sans-serif">{"".join(rows)}</svg>')


def render_html(rep: dict[str, Any]) -> str:
    e = html.escape
    months = [(calendar.month_abbr[i + 1], v) for i, v in enumerate(rep["reads_by_month"])]
    hits = [(f"{HOTLIST_PURPOSES.get(p, p)}", n) for p, n in rep["hits_by_purpose"].items()]
    users = sorted(rep["accesses_by_user"].items(), key=lambda kv: -kv[1])
    purposes = [(ACCESS_PURPOSES.get(p, p), n) for p, n in rep["accesses_by_purpose"].items()]
    chain = rep["audit_log"]
    chain_text = ("intact" if chain.get("ok") else "NOT INTACT: " + "; ".join(chain.get("errors", [])[:5])
                  ) if chain.get("ok") is not None else "not checked"
    access_rows = "".join(f"<tr><td>{e(a['user'])}</td><td>{e(a['purpose'])}</td><td>{a['count']}</td></tr>"
                          for a in rep["accesses"])
    update_rows = "".join(f"<tr><td>{e(str(u['time']))}</td><td>{e(str(u['action']))}</td>"
                          f"<td>{e(str(u['actor']))}</td></tr>" for u in rep["updates"])
    summary = [("Reads", rep["reads"]), ("Alerts", rep["alerts"]), ("Hits", sum(rep["hits_by_purpose"].values())),
               ("Accesses", sum(a["count"] for a in rep["accesses"])),
               ("Audits run", sum(rep["audits_run"].values())), ("Updates", len(rep["updates"])),
               ("Failed logins", rep["failed_logins"]), ("Lockouts", rep["lockouts"]),
               ("Uptime", f"{rep['uptime_ratio'] * 100:.2f} %")]
    cells = "".join(f"<tr><th>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in summary)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ALPR annual usage report {rep['year']}</title>
<style>body{{font-family:sans-serif;max-width:760px;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left}}</style></head><body>
<h1>ALPR annual usage report {rep['year']}</h1>
<p>Device {e(rep['device'])}; generated {e(rep['generated'])}. Audit log: {e(chain_text)}
({chain.get('entries')} entries).</p>
<table>{cells}</table>
<h2>Reads by month</h2>{_bars("Reads by month", months)}
<h2>Hits by purpose</h2>{_bars("Hits by purpose", hits)}
<h2>Accesses</h2>{_bars("Accesses by user", users)}{_bars("Accesses by purpose", purposes)}
<table><tr><th>User</th><th>Purpose</th><th>Accesses</th></tr>{access_rows}</table>
<h2>Updates</h2><table><tr><th>Time</th><th>Event</th><th>By</th></tr>{update_rows}</table>
</body></html>
"""


def write(rep: dict[str, Any], out_dir: Path | str) -> tuple[Path, Path]:
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    j, h = d / f"alpr-report-{rep['year']}.json", d / f"alpr-report-{rep['year']}.html"
    j.write_text(json.dumps(rep, indent=2, default=str) + "\n")
    h.write_text(render_html(rep))
    return j, h

