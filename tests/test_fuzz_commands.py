"""Fuzz: 3,500 generated remote commands (signed, forged, tampered, unsigned, junk) and 2,500 generated
configurations sent through `set_config`. Every one gets a JSON result; every refusal carries a clear
error and is in the audit log; nothing raises; a refused configuration never reaches the device."""

from __future__ import annotations

import json

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware import config as C
from firmware.envelope import canonical, seal
from firmware.hotlist import HotlistManager, storage_key
from firmware.remote import FORMAT, CommandProcessor, Handlers, NonceStore, make_command
from tests.fuzzkit import JSON, command_payloads, config_docs, fast_dir, weighted
from tests.policykit import NOW, Clock, audit_log, trusted

ADMIN = Ed25519PrivateKey.generate()
OTHER = Ed25519PrivateKey.generate()
COMMAND_EXAMPLES = 3500
CONFIG_EXAMPLES = 2500
SETTINGS = dict(derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck))


class Device:
    def __init__(self, d):
        self.clock = Clock()
        self.seen: list[dict] = []
        self.audit = audit_log(d, clock=self.clock)
        self.audit.mirror = self.seen.append
        self.cfg = C.parse({"device": {"id": "pole-7", "agency": "demo-pd"}})
        self.applied = 0
        key = Ed25519PrivateKey.generate()

        def apply(cfg):
            assert isinstance(cfg, C.Config)
            self.applied += 1
            self.cfg = cfg

        self.proc = CommandProcessor(
            "pole-7", "demo-pd", trusted(ADMIN), NonceStore(d / "nonces.db"), self.audit,
            Handlers(status=lambda: {"ok": 1}, get_config=lambda: self.cfg, apply_config=apply,
                     health_check=lambda: True, hotlists=HotlistManager(d / "hl", storage_key(key), {}, self.audit,
                                                                       clock=self.clock),
                     start_update=lambda a: {"started": True}, reboot=lambda: None,
                     fetch_logs=lambda n: ["x"] * n),
            clock=self.clock)

    def handle(self, data: bytes) -> dict:
        before = len(self.seen)
        res = json.loads(self.proc.handle(data))
        assert set(res) == {"v", "device", "nonce", "command", "ok", "error", "result", "time"}
        after = [e["action"] for e in self.seen[before:]]
        if res["ok"]:
            assert after[-1] == "cmd_done", after
        else:
            assert isinstance(res["error"], str) and len(res["error"]) > 10
            assert after and after[-1] in ("cmd_refused", "cmd_failed"), after
        return res


def _wire(kind: int, payload: object, flip: int) -> bytes:
    body = payload if isinstance(payload, dict) else {"p": payload}
    if kind == 0:
        return seal(body, ADMIN, FORMAT)
    if kind == 1:
        return seal(body, OTHER, FORMAT)
    if kind == 2:
        data = bytearray(seal(body, ADMIN, FORMAT))
        data[flip % len(data)] ^= 0x10
        return bytes(data)
    if kind == 3:
        return canonical({"format": FORMAT, "payload": canonical(body)}).encode()
    return canonical(payload).encode() if kind == 4 else bytes([flip % 256]) * (flip % 50)


def test_fuzz_commands():
    with fast_dir() as d:
        dev = Device(d)
        tally = {"ok": 0, "refused": 0, "serial": 0}

        @settings(max_examples=COMMAND_EXAMPLES, **SETTINGS)
        @given(kind=st.sampled_from([0] * 6 + [1, 2, 3, 4, 5]), payload=weighted(
            command_payloads("pole-7", "demo-pd"), JSON, 4),
            flip=st.integers(0, 10**6))
        def check(kind, payload, flip):
            if isinstance(payload, dict) and payload.get("nonce") == "fresh":
                tally["serial"] += 1
                payload = {**payload, "nonce": f"{tally['serial']:032x}"}
            res = dev.handle(_wire(kind, payload, flip))
            tally["ok" if res["ok"] else "refused"] += 1

        check()
        assert tally["ok"] > COMMAND_EXAMPLES // 50 and tally["refused"] > COMMAND_EXAMPLES // 2, tally
        assert dev.audit.verify().ok


def test_fuzz_configs_via_set_config():
    with fast_dir() as d:
        dev = Device(d)
        tally = {"applied": 0, "refused": 0}

        @settings(max_examples=CONFIG_EXAMPLES, **SETTINGS)
        @given(doc=config_docs(), whole=st.booleans())
        def check(doc, whole):
            before_cfg, before_applied = dev.cfg, dev.applied
            args = {"config": {**doc, "device": {"id": "pole-7", "agency": "demo-pd"}}} if whole else {"patch": doc}
            res = dev.handle(make_command(ADMIN, "set_config", "pole-7", "demo-pd", "alice", args, now=NOW))
            if res["ok"]:
                tally["applied"] += 1
                assert dev.applied == before_applied + 1
            else:
                tally["refused"] += 1
                assert dev.cfg is before_cfg and dev.applied == before_applied  # nothing half-applied
                assert res["error"].startswith(("set_config", "command refused"))
            try:  # the same document straight into the parser: a ConfigError or a Config, nothing else
                C.parse(doc)
            except C.ConfigError as exc:
                assert "invalid configuration" in str(exc)

        check()
        assert tally["applied"] > CONFIG_EXAMPLES // 50 and tally["refused"] > CONFIG_EXAMPLES // 2, tally
