"""Polewatch appliance firmware: pipeline, recognition, store, uplink, policy controls."""

__version__ = "0.1.0"
