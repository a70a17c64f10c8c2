"""The sealed local buffer (outbox) the uplink drains."""

from firmware.store.ids import uuid7
from firmware.store.outbox import (
    PART_NAMES,
    Outbox,
    OutboxItem,
    StoreError,
    StoreFull,
    event_location,
    site_location,
)

__all__ = [
    "PART_NAMES",
    "Outbox",
    "OutboxItem",
    "StoreError",
    "StoreFull",
    "event_location",
    "site_location",
    "uuid7",
]
