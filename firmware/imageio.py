"""Reading image files given on the command line, with errors a user can act on."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from drivers.camera.base import IMAGE_SUFFIXES  # what a folder given on the command line is read for

# the largest image decoded: 150 MP (a 108 MP phone photo fits) is 450 MB of BGR. A 425 KB PNG of
# 20000 x 20000 blank pixels took 2.4 GB and 12 s to decode and read: more than a Pi can spare.
MAX_PIXELS = 150_000_000


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
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise ImageError("no such file") from None
    except IsADirectoryError:
        raise ImageError("is a directory") from None
    except OSError as exc:
        raise ImageError(f"cannot read: {exc.strerror or exc}") from None
    if not raw:
        raise ImageError("empty file")
    _check_size(raw)
    img = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise ImageError("cannot decode: corrupt or not an image")
    return img


def _check_size(raw: bytes) -> None:
    """Refuse an image of more than MAX_PIXELS from its header, before its pixels are decoded.
    Formats Pillow does not know, and corrupt headers, are left to OpenCV to decode or refuse."""
    limit = f"more than the {MAX_PIXELS // 1_000_000} MP this reader decodes"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(raw)) as im:
                w, h = im.size
    except Image.DecompressionBombError:  # Pillow's own limit (179 MP) is past ours
        raise ImageError(f"too large: over {2 * Image.MAX_IMAGE_PIXELS // 1_000_000} MP, {limit}") from None
    except Exception:
        return
    if w * h > MAX_PIXELS:
        raise ImageError(f"too large: {w}x{h} pixels, {limit}")
