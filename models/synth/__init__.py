"""Synthetic training data: US-style plates and composite scenes."""
