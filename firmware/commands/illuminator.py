"""`polewatch illuminator off`: the systemd stop hook (ExecStopPost) that guarantees LEDs off.

It runs after the service has gone, however it went (even SIGKILL), and touches
nothing but the LED and IR-cut pins.
"""

from __future__ import annotations

import argparse
import json

from firmware import config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("illuminator", help="infrared illuminator control (stop hook)")
    p.add_argument("action", choices=["off", "status"], help="off: LEDs off, IR-cut to day; status: pin states (fake GPIO)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from drivers.gpio import FakeGpio, GpioError, open_gpio
    from drivers.illuminator import Illuminator
    from firmware.cli import UserError

    cfg = config.load(args.config)
    try:
        gpio = open_gpio(cfg.gpio, cfg.device.data_dir)
        if args.action == "off":
            Illuminator.force_off(cfg.illuminator, gpio)
            print(f"illuminator off (LED pin {cfg.illuminator.led_pin}, IR-cut pin {cfg.illuminator.ircut_pin})")
        else:
            pins = gpio.pins if isinstance(gpio, FakeGpio) else {}
            print(json.dumps({"backend": cfg.gpio.backend, "pins": {str(k): v for k, v in pins.items()}}))
    except GpioError as exc:
        raise UserError(str(exc)) from None
    return 0
