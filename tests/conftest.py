"""Shared pytest fixtures (each lives in its own helper module)."""

try:  # tests/ as rootdir-relative directory (pytest "prepend" import mode)
    from broker import broker, broker311  # noqa: F401
    from pgserver import pg_server  # noqa: F401
except ImportError:  # tests/ as a package
    from tests.broker import broker, broker311  # noqa: F401
    from tests.pgserver import pg_server  # noqa: F401
