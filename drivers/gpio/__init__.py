"""GPIO: one small interface, a backend per board, and a fake that records a timeline.

Code above the drivers asks for `open_gpio(cfg)` and never imports a vendor
module, so the same illuminator logic runs on a Pi, a Jetson and in tests.
"""

from __future__ import annotations

from pathlib import Path

from drivers.gpio.base import Gpio, GpioError, GpioUnavailable, Pwm
from drivers.gpio.fake import FakeGpio

__all__ = ["Gpio", "GpioError", "GpioUnavailable", "Pwm", "FakeGpio", "open_gpio"]


def open_gpio(cfg, data_dir: Path | None = None) -> Gpio:
    """Open the backend `cfg.backend` names (`cfg` is a firmware.config.GpioConfig)."""
    if cfg.backend == "fake":
        state = cfg.state_file
        if state is None and data_dir is not None:
            state = Path(data_dir) / "fake-gpio.json"
        return FakeGpio(state_file=state)
    if cfg.backend == "rpi":
        from drivers.gpio.rpi import RpiGpio

        return RpiGpio(numbering=cfg.numbering)
    if cfg.backend == "jetson":
        from drivers.gpio.jetson import JetsonGpio

        return JetsonGpio(numbering=cfg.numbering)
    raise GpioError(f"unknown GPIO backend {cfg.backend!r}")
