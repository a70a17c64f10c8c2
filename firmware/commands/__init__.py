"""Subcommand modules of the `polewatch` CLI (see firmware.cli.COMMANDS)."""
