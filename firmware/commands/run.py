"""`polewatch run`: the appliance (what the systemd unit starts)."""

from __future__ import annotations

import argparse
import logging
import signal

from firmware import config, logsetup

log = logging.getLogger("firmware.run")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run the appliance (embedded default: simulated camera and GPIO)")
    p.add_argument("--simulate", action="store_true", help="use the simulated road and fake GPIO whatever the config says")
    p.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds (demos, tests)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from firmware.app import App

    cfg = config.load(args.config)
    if args.simulate:
        cfg.camera.backend = "simulated"
        cfg.gpio.backend = "fake"
    logsetup.setup(cfg.logging)
    app = App(cfg)

    def _stop(signum: int, _frame: object) -> None:
        log.info("signal %s: stopping", signal.Signals(signum).name)
        app.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    from drivers.gpio import GpioError
    from firmware.cli import UserError

    try:
        return app.run(duration_s=args.duration)
    except GpioError as exc:  # missing GPIO package or bad pin: a setup problem, said in one line
        raise UserError(str(exc)) from None
    except Exception:  # the illuminator is already off (context manager); say why we died
        log.exception("appliance crashed")
        return 1
