"""Crash-safe file primitives: every state change on the device goes through these.

Power can be cut or the updater SIGKILLed between any two system calls, so a
file is never rewritten in place: the new content goes to a temporary file in
the same directory, is fsynced, then renamed over the old one (rename is
atomic on POSIX), and the directory is fsynced so the rename itself survives.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def fsync_dir(path: Path) -> None:
    """Make a rename/creation/unlink inside `path` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace `path` with `data` so that a reader sees the old or the new bytes, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(path.parent)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def read_json(path: Path, default: Any = None) -> Any:
    """Read a JSON state file; a missing or torn file (impossible with atomic_write, but cheap to guard) gives `default`."""
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        return default
    except (ValueError, UnicodeDecodeError):
        return default


def atomic_symlink(target: str, link: Path) -> None:
    """Point `link` at `target` atomically: build a new symlink beside it, rename it over the old one."""
    tmp = link.with_name(f".{link.name}.new")
    try:
        tmp.unlink()
    except FileNotFoundError:
        pass
    os.symlink(target, tmp)
    os.replace(tmp, link)
    fsync_dir(link.parent)


def fsync_tree(root: Path) -> None:
    """fsync every file and directory under `root` (before a staged slot is declared complete)."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            p = os.path.join(dirpath, name)
            if os.path.islink(p):
                continue
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(dirpath))
