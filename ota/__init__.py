"""Signed over-the-air updates: bundles, TUF repository tooling, device updater, A/B install.

Device side: `ota.updater.Updater` (check, apply, activate, recover, status).
IT manager side: `ota.repository.ReleaseRepository` and `ota.manifest.build_bundle`.
Application side: `ota.health.write_health_file` feeds the health gate.
"""
