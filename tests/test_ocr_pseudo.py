"""Pseudo-labelled real crops (models.ocr.pseudo): sure reads kept as labels, the rest and bad files left out."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from firmware.recognition.ocr import OCR_H, OCR_W, encode
from models.ocr import pseudo
from tests.test_ocr_reshuffle import _plate


def _folder(tmp_path):
    img, _ = _plate("7AB12")
    cv2.imwrite(str(tmp_path / "a_plate.png"), cv2.cvtColor(cv2.resize(img, (OCR_W * 2, OCR_H * 2)), cv2.COLOR_GRAY2BGR))
    cv2.imwrite(str(tmp_path / "b_blank.png"), np.full((96, 256, 3), 200, np.uint8))
    (tmp_path / "c_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    return sorted(tmp_path.iterdir())


def test_sure_reads_become_labels_and_blank_or_corrupt_images_do_not(tmp_path, caplog) -> None:
    pytest.importorskip("onnxruntime")
    pool = pseudo.label(_folder(tmp_path), None)
    assert list(pool["text"]) == ["7AB12"] and list(pool["name"]) == ["a_plate.png"]
    assert int(pool["seen"]) == 2  # the corrupt file is not read, and says so
    assert "c_corrupt.jpg" in caplog.text
    assert pool["x"].shape == (1, OCR_H, OCR_W) and pool["x"].dtype == np.uint8
    assert (pool["y"][0] == encode("7AB12")).all() and pool["confidence"][0] >= pseudo.FLOOR
    # a floor no read reaches keeps nothing, and the pool is still a well-formed (empty) one
    none = pseudo.label(_folder(tmp_path), None, floor=1.01)
    assert none["x"].shape == (0, OCR_H, OCR_W) and len(none["text"]) == 0


def test_a_saved_pool_loads_as_a_training_pool_and_a_wrong_file_is_named(tmp_path) -> None:
    pool = {"x": np.zeros((2, OCR_H, OCR_W), np.uint8), "y": np.stack([encode("AB123"), encode("XY9")]),
            "text": np.array(["AB123", "XY9"]), "confidence": np.array([0.99, 0.97], np.float32),
            "name": np.array(["1.jpg", "2.jpg"]), "seen": np.array(5)}
    out = tmp_path / "pool.npz"
    pseudo.save(pool, out)
    x, y = pseudo.load(out)
    assert x.shape == (2, OCR_H, OCR_W) and (y == pool["y"]).all()
    assert out.with_suffix(".tsv").read_text().splitlines()[1:] == ["1.jpg\tAB123\t0.9900", "2.jpg\tXY9\t0.9700"]
    (tmp_path / "wrong.npz").write_bytes(b"not an npz")
    with pytest.raises(SystemExit, match="wrong.npz: not a pseudo-label pool"):
        pseudo.load(tmp_path / "wrong.npz")
