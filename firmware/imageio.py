"""Reading image files given on the command line, with errors a user can act on."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}


class ImageError(Exception):
    """A file that is missing, unreadable or not a decodable image."""


def expand(paths: list[str]) -> list[Path]:
    """Files as given, and the image files directly inside any folder given, sorted."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
        else:
            out.append(p)
    return out


def read_image(path: Path) -> np.ndarray:
    """Decode an image file to BGR uint8, or raise ImageError saying why not."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except FileNotFoundError:
        raise ImageError("no such file") from None
    except IsADirectoryError:
        raise ImageError("is a directory") from None
    except OSError as exc:
        raise ImageError(f"cannot read: {exc.strerror or exc}") from None
    if data.size == 0:
        raise ImageError("empty file")
    img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if img is None:
        raise ImageError("cannot decode: corrupt or not an image")
    return img
