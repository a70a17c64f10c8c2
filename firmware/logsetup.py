"""Structured logging: one JSON object per line on stdout (journald keeps it), levels per module."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

_STD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for k, v in record.__dict__.items():  # `extra=` fields
            if k not in _STD and not k.startswith("_"):
                out[k] = v if isinstance(v, (str, int, float, bool, type(None), list, dict)) else str(v)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def setup(cfg: Any, stream: TextIO | None = None) -> None:
    """Apply a firmware.config.LoggingConfig: root level, format, per-module levels."""
    handler = logging.StreamHandler(stream or sys.stdout)
    if cfg.format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_polewatch", False):
            root.removeHandler(h)
    handler._polewatch = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(cfg.level)
    for name, level in cfg.modules.items():
        logging.getLogger(name).setLevel(level)
