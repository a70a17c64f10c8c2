"""Fuzz: 4,000 generated hot lists. Every one is installed or refused with a HotlistError naming
the problem; every refusal (list or entry) is in the audit log; no other exception, ever."""

from __future__ import annotations

import json

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware.envelope import canonical, seal
from firmware.hotlist import HotlistError, HotlistManager, storage_key
from firmware.hotlist.model import FORMAT
from tests.fuzzkit import JSON, fast_dir, hotlist_payloads, weighted
from tests.policykit import Clock, audit_log, trusted

DEPT = Ed25519PrivateKey.generate()
OTHER = Ed25519PrivateKey.generate()
EXAMPLES = 4000


def _wire(draw_kind: int, payload: object, flip: int) -> bytes:
    if draw_kind == 0:  # properly signed by the department: content checks decide
        return seal(payload, DEPT, FORMAT) if isinstance(payload, dict) else canonical(payload).encode()
    if draw_kind == 1:  # signed by a key the device does not trust
        return seal(payload if isinstance(payload, dict) else {"p": payload}, OTHER, FORMAT)
    if draw_kind == 2:  # signed, then one byte changed in transit or at rest
        data = bytearray(seal(payload if isinstance(payload, dict) else {"p": payload}, DEPT, FORMAT))
        data[flip % len(data)] ^= 0x04
        return bytes(data)
    return canonical({"format": FORMAT, "payload": payload}).encode()  # unsigned


def test_fuzz_hotlists():
    with fast_dir() as d:
        clock = Clock()
        log = audit_log(d, clock=clock)
        seen: list[dict] = []
        log.mirror = seen.append  # every audit entry, as the department would receive it
        mgr = HotlistManager(d / "hl", storage_key(Ed25519PrivateKey.generate()), trusted(DEPT), log, clock=clock)
        counts = {"installed": 0, "refused": 0, "serial": 0}

        @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(kind=st.sampled_from([0] * 7 + [1, 2, 3]), payload=weighted(hotlist_payloads(), JSON, 4),
               flip=st.integers(0, 10**6), probe=st.lists(st.text(max_size=12), max_size=3),
               newer=st.sampled_from([True, True, True, False]))
        def check(kind, payload, flip, probe, newer):
            if newer and isinstance(payload, dict) and type(payload.get("version")) is int:
                counts["serial"] += 1  # as the department issues them: each list newer than the last
                payload = {**payload, "version": 10**9 + counts["serial"]}
            data = _wire(kind, payload, flip)
            before = len(seen)
            try:
                res = mgr.install(data)
            except HotlistError as exc:
                assert str(exc) and "\n" not in str(exc)[:200]
                last = seen[-1]
                assert last["action"] == "hotlist_refused" and last["detail"]["error"] == str(exc)[:500]
                counts["refused"] += 1
            else:
                after = seen[before:]
                if res["changed"]:
                    refused = [e for e in after if e["action"] == "hotlist_entry_refused"]
                    batched = [e for e in after if e["action"] == "hotlist_entries_refused"]
                    n = len(refused) + sum(len(e["detail"]["entries"]) for e in batched)
                    assert n == res["refused_entries"]
                    assert all(e["detail"]["error"] for e in refused)
                    counts["installed"] += 1
            for hit in mgr.match([(p, 0.5) for p in probe]):  # the matcher survives whatever got in
                json.dumps(hit.to_alert())

        check()
        # both paths well exercised: real installs (with refused entries) and whole-list refusals
        assert counts["installed"] > EXAMPLES // 20 and counts["refused"] > EXAMPLES // 4, counts
        assert log.verify().ok
