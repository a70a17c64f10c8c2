"""Errors of the update path. Every one carries a message that names the problem for the audit trail."""

from __future__ import annotations


class OtaError(Exception):
    """Base class: an update could not be done; the installed release is untouched."""


class RejectedUpdate(OtaError):
    """The update failed verification (signatures, hashes, lengths, versions, compatibility).

    Raised before anything is written to a release slot.
    """


class BundleError(RejectedUpdate):
    """A release bundle is malformed or its files differ from its manifest."""


class RepositoryToolError(OtaError):
    """The IT manager's repository tooling cannot do what was asked (missing key, bad threshold)."""


class Busy(OtaError):
    """Another updater process holds the lock (one install at a time)."""
