"""Signed over-the-air updates: bundles, TUF repository tooling, device updater, A/B install."""
