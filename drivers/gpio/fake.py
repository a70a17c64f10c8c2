"""A fake GPIO board for tests and the simulator: records every pin change on a timeline.

It can keep its pin states in a JSON file, so that a second process (the
systemd stop hook running `polewatch illuminator off` after a SIGKILL) acts on
the same "board" and tests can observe what the hook did.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drivers.gpio.base import Gpio, GpioError, Pull, Pwm, clamp_duty


@dataclass(frozen=True, slots=True)
class PinEvent:
    t: float  # time.monotonic()
    pin: int
    what: str  # setup_output, setup_input, write, pwm_start, duty, pwm_stop, release
    value: Any


class _FakePwm(Pwm):
    def __init__(self, board: FakeGpio, pin: int) -> None:
        self._board, self._pin = board, pin

    def set_duty(self, fraction: float) -> None:
        self._board._set(self._pin, "duty", clamp_duty(fraction))

    def stop(self) -> None:
        self._board._set(self._pin, "pwm_stop", None)


class FakeGpio(Gpio):
    def __init__(self, state_file: Path | str | None = None, pwm_pins: set[int] | None = None) -> None:
        self.state_file = Path(state_file) if state_file else None
        self.pwm_pins = pwm_pins  # None: every pin can do PWM
        self.timeline: list[PinEvent] = []
        self._lock = threading.Lock()
        self.pins: dict[int, dict[str, Any]] = {}
        if self.state_file and self.state_file.exists():
            self.pins = self.read_state(self.state_file)

    @staticmethod
    def read_state(path: Path | str) -> dict[int, dict[str, Any]]:
        """Pin states a FakeGpio persisted: {pin: {"mode", "value", "duty"}}."""
        raw = json.loads(Path(path).read_text())
        return {int(k): v for k, v in raw.items()}

    # test-side hook: drive an input as the outside world would
    def set_input(self, pin: int, value: bool) -> None:
        with self._lock:
            self.pins.setdefault(pin, {"mode": "in", "value": False, "duty": None})["value"] = bool(value)

    def setup_output(self, pin: int, initial: bool = False) -> None:
        self._set(pin, "setup_output", bool(initial))

    def setup_input(self, pin: int, pull: Pull = "off") -> None:
        self._set(pin, "setup_input", pull)

    def write(self, pin: int, value: bool) -> None:
        self._require(pin, "out")
        self._set(pin, "write", bool(value))

    def read(self, pin: int) -> bool:
        with self._lock:
            if pin not in self.pins:
                raise GpioError(f"pin {pin} read before setup")
            return bool(self.pins[pin]["value"])

    def pwm(self, pin: int, frequency_hz: float) -> Pwm:
        self._require(pin, "out")
        if self.pwm_pins is not None and pin not in self.pwm_pins:
            raise GpioError(f"pin {pin} cannot do PWM on this board")
        if frequency_hz <= 0:
            raise GpioError(f"PWM frequency {frequency_hz!r} must be positive")
        self._set(pin, "pwm_start", float(frequency_hz))
        return _FakePwm(self, pin)

    def close(self) -> None:
        for pin in list(self.pins):
            if self.pins[pin]["mode"] == "out":
                self._set(pin, "release", None)

    def history(self, pin: int) -> list[PinEvent]:
        return [e for e in self.timeline if e.pin == pin]

    def _require(self, pin: int, mode: str) -> None:
        if self.pins.get(pin, {}).get("mode") != mode:
            raise GpioError(f"pin {pin} is not set up as {'an output' if mode == 'out' else 'an input'}")

    def _set(self, pin: int, what: str, value: Any) -> None:
        with self._lock:
            st = self.pins.setdefault(pin, {"mode": None, "value": False, "duty": None})
            if what == "setup_output":
                st.update(mode="out", value=value, duty=None)
            elif what == "setup_input":
                st.update(mode="in", duty=None)
            elif what == "write":
                st["value"] = value
            elif what == "pwm_start":
                st["duty"] = 0.0
            elif what == "duty":
                st["duty"] = value
            elif what == "pwm_stop":
                st["duty"] = None
            elif what == "release":
                st.update(mode="in", value=False, duty=None)
            self.timeline.append(PinEvent(time.monotonic(), pin, what, value))
            self._persist()

    def _persist(self) -> None:
        if not self.state_file:
            return
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({str(k): v for k, v in self.pins.items()}))
        os.replace(tmp, self.state_file)
