"""Raspberry Pi GPIO through RPi.GPIO; on a Pi 5 the rpi-lgpio package provides the same module."""

from __future__ import annotations

from drivers.gpio._rpistyle import RpiStyleGpio
from drivers.gpio.base import GpioUnavailable


class RpiGpio(RpiStyleGpio):
    def __init__(self, numbering: str = "BCM") -> None:
        try:
            import RPi.GPIO as GPIO  # noqa: N814  (vendor module, imported lazily)
        except (ImportError, RuntimeError) as exc:
            raise GpioUnavailable(
                "GPIO backend 'rpi' needs the RPi.GPIO module: on a Pi 5 `pip install rpi-lgpio`, "
                f"on older Pis `apt install python3-rpi.gpio` ({exc})"
            ) from None
        super().__init__(GPIO, numbering)
