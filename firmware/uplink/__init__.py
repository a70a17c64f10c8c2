"""MQTT store-and-forward to the department broker (see docs/store-and-uplink.md)."""

from firmware.uplink.acks import AckError, decode_ack, encode_ack
from firmware.uplink.client import HANDLER_CHANNELS, Uplink

__all__ = ["HANDLER_CHANNELS", "AckError", "Uplink", "decode_ack", "encode_ack"]
