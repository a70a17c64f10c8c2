"""Hypothesis strategies for the fuzz tests: hot lists, commands and configurations that
are mostly almost right (the interesting kind of wrong), plus plain junk.

Each field is drawn from a pool of good and nasty values with one draw: generation
dominates a fuzz run's time, and this keeps 10,000 examples within CI time while
Hypothesis still chooses, combines and shrinks."""

from __future__ import annotations

import random
import shutil
import tempfile
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from hypothesis import strategies as st

from firmware.purposes import HOTLIST_PURPOSES
from tests.policykit import NOW

NASTY = [None, True, False, 0, -1, 2**63, -(2**70), 1.5, 1e308, "", " ", "x" * 300, "\x00", "\u202e", "💥",
         "'; DROP TABLE parts;--", "../../etc/passwd", [], {}, [1, "a"], {"a": None}, {"": {}}, [[[]]]]
JSON = st.one_of(st.sampled_from(NASTY), st.integers(-(2**40), 2**40), st.text(max_size=10))
JUNK_TEXT = st.text(max_size=12)


def weighted(usual: st.SearchStrategy, rare: st.SearchStrategy, one_in: int = 8) -> st.SearchStrategy:
    """`usual`, and `rare` about once in `one_in` draws (st.one_of would merge repeated branches)."""
    return st.integers(0, one_in - 1).flatmap(lambda i: rare if i == 0 else usual)


def _mix(good: list, bad: list) -> list:
    """Good values about four times as often as bad and nasty ones together."""
    bad = bad + NASTY
    return good * max(1, -(-4 * len(bad) // len(good))) + bad


def _pool(good: list, bad: list) -> st.SearchStrategy:
    return st.sampled_from(_mix(good, bad))


_rng = random.Random(20261128)
_ALNUM = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
PLATES = ["".join(_rng.choice(_ALNUM) for _ in range(_rng.randint(2, 8))) for _ in range(60)]
PARTIALS = ["7AB?12", "ABC*", "?XYZ12", "8*99", "AB??12", "1OO5Z*"]
BAD_PATTERNS = ["*", "A*", "??1", "A", "ABC$12", "ABCDEFGHIJK", "abc 123", "7-ab-c", "ÄBC123", "A\nB", "**A**"]
GOOD_TIMES = [(NOW + timedelta(hours=h)).isoformat() for h in (1, 5, 30, 24 * 7, 24 * 90)]
PAST_TIMES = [(NOW - timedelta(hours=h)).isoformat() for h in (1, 24, 24 * 30)]
BAD_TIMES = ["2026-13-01T00:00:00Z", "2026-11-28T12:00:00", "yesterday", "", "2026-11-28Z", "9999-99-99",
             (NOW + timedelta(days=1)).isoformat().replace("+00:00", "Z")]
CASES = ["24-0001", "AMBER-7", "W/2026/19", "C#12"]
BAD_CASES = ["", " leading", "x" * 65, "a\nb"]


def times() -> st.SearchStrategy:
    return _pool(GOOD_TIMES, PAST_TIMES + BAD_TIMES)


def _entry_pool(n: int = 400) -> list:
    """Pre-built entries, mostly valid, each field sometimes wrong (drawn once, by Hypothesis)."""
    pick = lambda good, bad: _rng.choice(_mix(good, bad))  # noqa: E731
    out: list = []
    for _ in range(n):
        e = {"pattern": pick(PLATES + PARTIALS, BAD_PATTERNS),
             "purpose": pick(sorted(HOTLIST_PURPOSES), ["parking", "infraction", "minor_vehicle_code"]),
             "case": pick(CASES, BAD_CASES), "expires": pick(GOOD_TIMES, PAST_TIMES + BAD_TIMES)}
        r = _rng.random()
        if r < 0.03:
            e["note"] = "x"
        elif r < 0.06:
            del e["case"]
        elif r < 0.09:
            e = _rng.choice(NASTY)
        out.append(e)
    return out


ENTRY_POOL = _entry_pool()


def entries() -> st.SearchStrategy:
    return st.sampled_from(ENTRY_POOL)


def hotlist_payloads() -> st.SearchStrategy:
    """A list whose fields are mostly right, each sometimes wrong; now and then an unknown field."""
    base = st.fixed_dictionaries({
        "list": _pool([f"list-{i}" for i in range(50)], ["", "a b", "x" * 80, "../x"]),
        "version": _pool(list(range(1, 50)), [0, -3]),
        "agency": _pool(["demo-pd"], ["", "x y"]),
        "issued": _pool(PAST_TIMES, GOOD_TIMES + BAD_TIMES),
        "expires": _pool(GOOD_TIMES, PAST_TIMES + BAD_TIMES),
        "entries": weighted(st.lists(entries(), max_size=4), JSON),
    })
    return st.tuples(base, st.integers(0, 9)).map(lambda t: {**t[0], "extra": 1} if t[1] == 0 else t[0])


def command_payloads(device: str, agency: str) -> st.SearchStrategy:
    from firmware.remote import COMMANDS

    args = st.one_of(
        st.just({}),
        st.fixed_dictionaries({}, optional={
            "lines": _pool([1, 5, 200], [0, 10**7, "5"]),
            "patch": _pool([{"pipeline": {"min_confidence": 0.6}}, {"camera": {"fps": 15}}],
                           [{"camera": {"fsp": 1}}, {"device": {"id": "x"}}, {"pipeline": {"min_confidence": 9}}]),
            "hotlist": _pool(["{}"], ["", "not a list"]),
            "records": _pool([["0190d3a2-0000-7000-8000-000000000000"]], [[], ["x"], "abc"]),
            "x": JSON}),
        JSON)
    issued = _pool([(NOW - timedelta(seconds=s)).isoformat() for s in (0, 30, 3000)],
                   [(NOW + timedelta(hours=1)).isoformat(), (NOW - timedelta(days=3)).isoformat()] + BAD_TIMES)
    expires = _pool([(NOW + timedelta(seconds=s)).isoformat() for s in (60, 600, 3600)],
                    [(NOW - timedelta(seconds=5)).isoformat(), (NOW + timedelta(days=40)).isoformat()] + BAD_TIMES)
    return st.fixed_dictionaries({
        "v": _pool([1], [2, "1"]),
        "command": _pool(list(COMMANDS), ["format_disk", "STATUS", ""]),
        "args": args,
        "device": _pool([device, "*"], ["other", ""]),
        "agency": _pool([agency], ["other-pd"]),
        # "fresh" is replaced by the test with a new nonce; the rest are replays or malformed
        "nonce": _pool(["fresh"], ["ab" * 16, "xyz", "AB" * 16, "a" * 300]),
        "issued": issued,
        "expires": expires,
        "issuer": _pool(["alice", "it.kim"], ["", "a b", "x" * 80]),
    }, optional={"purpose": _pool(["maintenance", "audit", "investigation"], ["parking", "infraction"]),
                 "case": _pool(CASES, BAD_CASES)})


def config_docs() -> st.SearchStrategy:
    """Configuration patches: known sections and keys with odd values, unknown keys, wrong shapes."""
    from firmware.config import Config

    keys = []
    for name, f in Config.model_fields.items():
        sub = getattr(f.annotation, "model_fields", None)
        for k in (sub or {"x": None}):
            keys.append((name, k))
    keys += [("camera", "fsp"), ("nonsense", "x"), ("uplink", "passwd")]
    values = NASTY + [1, 5, 30, 0.5, 200, 8883, "simulated", "opencv", "fp16", "json", "DEBUG", [1, 2, 3, 4],
                      ["O0", "I1"], "/tmp/x", "rtsp://10.0.0.1/s", 65536, -5]
    leaf = st.tuples(st.sampled_from(keys), st.sampled_from(values))

    def build(items: list) -> dict:
        out: dict = {}
        for (sec, key), value in items:
            out.setdefault(sec, {})[key] = value
        return out

    return st.one_of(st.lists(leaf, min_size=1, max_size=4).map(build),
                     st.fixed_dictionaries({"camera": JSON}), st.sampled_from(NASTY).map(lambda v: {"pipeline": v}))


@contextmanager
def fast_dir():
    """A directory on tmpfs when there is one: the audit log fsyncs every entry."""
    base = "/dev/shm" if Path("/dev/shm").is_dir() else None
    d = Path(tempfile.mkdtemp(prefix="polewatch-fuzz-", dir=base))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)
