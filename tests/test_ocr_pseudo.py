"""Pseudo-labelled real crops (models.ocr.pseudo): sure reads kept as labels, the rest and bad files left out."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from firmware.recognition.ocr import OCR_H, OCR_W, encode
from models.ocr import pseudo
from tests.test_ocr_reshuffle import _plate


def _folder(tmp_path):
    img, spans = _plate("7AB12")
    img = img[:, : spans[-1][1] + 8]  # cut at the text's end, as a plate is, whatever OCR_W leaves blank beyond it
    cv2.imwrite(str(tmp_path / "a_plate.png"), cv2.cvtColor(cv2.resize(img, (OCR_W * 2, OCR_H * 2)), cv2.COLOR_GRAY2BGR))
    cv2.imwrite(str(tmp_path / "b_blank.png"), np.full((96, 256, 3), 200, np.uint8))
    (tmp_path / "c_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    return sorted(tmp_path.iterdir())


def test_sure_reads_become_labels_and_blank_or_corrupt_images_do_not(tmp_path, caplog) -> None:
    pytest.importorskip("onnxruntime")
    files = _folder(tmp_path)
    rec = pseudo.labeller(None)
    pool = pseudo.label(pseudo.crop_files(files), len(files), rec)
    assert list(pool["text"]) == ["7AB12"] and list(pool["name"]) == ["a_plate.png"]
    assert int(pool["seen"]) == 2  # the corrupt file is not read, and says so
    assert "c_corrupt.jpg" in caplog.text
    assert pool["x"].shape == (1, OCR_H, OCR_W) and pool["x"].dtype == np.uint8
    assert (pool["y"][0] == encode("7AB12")).all() and pool["confidence"][0] >= pseudo.FLOOR
    # a floor no read reaches keeps nothing, and the pool is still a well-formed (empty) one
    none = pseudo.label(pseudo.crop_files(files), len(files), rec, floor=1.01)
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
    pseudo.save({k: v[:0] if v.ndim else v for k, v in pool.items()}, tmp_path / "empty.npz")
    with pytest.raises(SystemExit, match="empty.npz: holds no crops"):
        pseudo.load(tmp_path / "empty.npz")
    (tmp_path / "wrong.npz").write_bytes(b"not an npz")
    with pytest.raises(SystemExit, match="wrong.npz: not a pseudo-label pool"):
        pseudo.load(tmp_path / "wrong.npz")


def test_scene_plates_are_cut_where_the_detector_finds_a_labelled_box_and_missing_ones_are_none(tmp_path) -> None:
    pytest.importorskip("onnxruntime")
    from firmware.recognition.detect import DETECTOR_INPUT
    from models.synth.scenes import SceneGenerator

    gen = SceneGenerator(backgrounds=[], min_width=50.0)
    rows = ["file\tx\ty\tw\th\tplate"]
    rng = np.random.default_rng(7)
    for k in range(3):
        img, boxes, _ = gen.sample(rng, size=DETECTOR_INPUT, n_plates=1, night=False)
        cv2.imwrite(str(tmp_path / f"s{k}.jpg"), img)
        x1, y1, x2, y2 = boxes[0]
        rows.append(f"s{k}.jpg\t{x1:.0f}\t{y1:.0f}\t{x2 - x1:.0f}\t{y2 - y1:.0f}\t")
    rows.append("s0.jpg\t0\t0\t20\t10\t")  # a box with no plate in it
    rows.append("gone.jpg\t0\t0\t20\t10\t")  # a frame that is not there
    (tmp_path / "labels.tsv").write_text("\n".join(rows) + "\n")
    rec = pseudo.labeller(None)
    items = list(pseudo.scene_crops(tmp_path, rec))
    assert [name for name, _ in items] == ["gone.jpg#0", "s0.jpg#0", "s0.jpg#1", "s1.jpg#0", "s2.jpg#0"]
    crops = dict(items)
    assert crops["gone.jpg#0"] is None and crops["s0.jpg#1"] is None
    found = [c for n, c in items if c is not None]
    assert len(found) >= 2 and all(c.ndim == 3 and c.shape[1] > c.shape[0] for c in found)
    pool = pseudo.label(iter(items), len(items), rec)
    assert int(pool["seen"]) == len(found) and set(pool["name"]) <= {"s0.jpg#0", "s1.jpg#0", "s2.jpg#0"}
