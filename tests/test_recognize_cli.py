"""`polewatch recognize` and `polewatch eval` as a user runs them, on the shipped models."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from models import MODELS_DIR
from models.synth.plates import render_plate

pytestmark = pytest.mark.skipif(not (MODELS_DIR / "manifest.json").exists(), reason="models not exported yet")
CLI = [sys.executable, "-m", "firmware.cli"]


def polewatch(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300, cwd=cwd)


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> tuple[Path, list[str]]:
    d = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(7)
    texts = []
    for i in range(6):
        img, text = render_plate(rng, text=["7ABC123", "4KXM512", "GRT8841", "5TRW228", "ZX9Y21", "8PLT440"][i],
                                 degrade=False)
        cv2.imwrite(str(d / f"crop{i}.png"), cv2.resize(img, (240, 120)))
        texts.append(text)
    frame = np.full((720, 1280, 3), 95, np.uint8)
    frame[300:390, 500:680] = cv2.resize(cv2.imread(str(d / "crop0.png")), (180, 90))
    cv2.imwrite(str(d / "scene.jpg"), frame)
    (d / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    return d, texts


def test_crop_json_contract_and_reads(images):
    d, texts = images
    crops = sorted(d.glob("crop*.png"))
    r = polewatch("recognize", "--crop", "--json", "--top", "3", *map(str, crops))
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert [x["image"] for x in lines] == [str(c) for c in crops]
    right = 0
    for line, text in zip(lines, texts):
        assert line["ms"] > 0
        for p in line["plates"]:
            assert set(p) == {"plate", "confidence", "box", "candidates"}
            assert p["box"] == [0, 0, 240, 120]
            assert 1 <= len(p["candidates"]) <= 3 and 0 <= p["confidence"] <= 1
            assert p["candidates"][0]["plate"] == p["plate"]
        right += bool(line["plates"]) and line["plates"][0]["plate"] == text
    assert right >= 4, lines  # clean synthetic crops: the shipped OCR reads nearly all


def test_corrupt_and_missing_files_are_reported_and_the_run_goes_on(images):
    d, _ = images
    r = polewatch("recognize", "--json", str(d / "corrupt.jpg"), str(d / "nope.png"), str(d / "scene.jpg"))
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert lines[0] == {"image": str(d / "corrupt.jpg"), "error": "cannot decode: corrupt or not an image"}
    assert lines[1] == {"image": str(d / "nope.png"), "error": "no such file"}
    assert "plates" in lines[2] and "Traceback" not in r.stderr


def test_an_image_too_large_to_decode_is_refused_from_its_header_and_the_run_goes_on(images, tmp_path):
    """A 22 KB PNG of 20000 x 9000 blank pixels (1-bit) would decode to 540 MB of BGR; one of 20000 x
    20000 took 2.4 GB and 12 s before this check. Refused from its header, before any pixel is decoded."""
    from PIL import Image

    d, _ = images
    bomb = tmp_path / "bomb.png"
    Image.new("1", (20000, 9000)).save(bomb)
    big = tmp_path / "big.png"
    Image.new("1", (13000, 12000)).save(big)  # 156 MP: past ours, under Pillow's own limit
    r = polewatch("recognize", "--json", str(bomb), str(big), str(d / "scene.jpg"))
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert lines[0]["image"] == str(bomb) and lines[0]["error"].startswith("too large: over 178 MP")
    assert lines[1] == {"image": str(big), "error": "too large: 13000x12000 pixels, more than the 150 MP this reader decodes"}
    assert "plates" in lines[2] and "Traceback" not in r.stderr


def test_read_image_keeps_to_max_pixels_and_leaves_headers_pillow_cannot_read_to_opencv(tmp_path, monkeypatch):
    import cv2
    import numpy as np

    from firmware import imageio

    monkeypatch.setattr(imageio, "MAX_PIXELS", 40 * 40)
    cv2.imwrite(str(tmp_path / "small.png"), np.full((40, 40), 128, np.uint8))
    cv2.imwrite(str(tmp_path / "wide.png"), np.full((40, 41), 128, np.uint8))
    assert imageio.read_image(tmp_path / "small.png").shape == (40, 40, 3)
    with pytest.raises(imageio.ImageError, match="too large: 41x40 pixels"):
        imageio.read_image(tmp_path / "wide.png")

    def unknown(*args, **kwargs):
        raise OSError("cannot identify image file")

    monkeypatch.setattr(imageio.Image, "open", unknown)  # a format or header Pillow does not know
    assert imageio.read_image(tmp_path / "wide.png").shape == (40, 41, 3)


def test_exit_code_is_non_zero_only_when_nothing_could_be_read(images):
    d, _ = images
    r = polewatch("recognize", "--json", str(d / "corrupt.jpg"))
    assert r.returncode != 0 and "Traceback" not in r.stderr
    r = polewatch("recognize", str(d))  # a folder expands to its images; table output
    assert r.returncode == 0 and "scene.jpg" in r.stdout and "error" in r.stdout


def test_a_folder_gives_every_image_format_opencv_decodes(tmp_path, images):
    d, _ = images
    scene = cv2.imread(str(d / "scene.jpg"))
    from PIL import Image

    Image.fromarray(scene[:, :, ::-1]).save(tmp_path / "scene.gif")  # a format the folder scan had skipped
    cv2.imwrite(str(tmp_path / "scene.jp2"), scene)
    (tmp_path / "notes.txt").write_text("not an image")
    r = polewatch("recognize", "--json", str(tmp_path))
    lines = [json.loads(ln) for ln in r.stdout.splitlines()]
    assert [Path(ln["image"]).name for ln in lines] == ["scene.gif", "scene.jp2"]
    assert all(ln.get("plates") for ln in lines), lines


def test_scene_plate_is_found_with_a_box_inside_the_frame(images):
    d, texts = images
    r = polewatch("recognize", "--json", str(d / "scene.jpg"))
    line = json.loads(r.stdout)
    assert line["plates"], line
    x, y, w, h = line["plates"][0]["box"]
    assert 450 < x + w / 2 < 730 and 250 < y + h / 2 < 440


def test_a_phone_photo_stored_sideways_is_read_upright_by_its_exif_orientation(tmp_path, images):
    """Phones store a portrait or turned shot's pixels as the sensor saw them and say in EXIF how to turn
    them; the plate is read in the photo as it is shown, and its box is in those coordinates."""
    from PIL import Image

    d, texts = images
    scene = cv2.imread(str(d / "scene.jpg"))  # upright: the plate's centre at (590, 345) of 1280 x 720
    stored = cv2.rotate(scene, cv2.ROTATE_90_COUNTERCLOCKWISE)  # 720 wide, 1280 high, text running upwards
    im = Image.fromarray(stored[:, :, ::-1])
    exif = im.getexif()
    exif[0x0112] = 6  # Orientation: turn 90 degrees clockwise to show
    im.save(tmp_path / "phone.jpg", "JPEG", quality=95, exif=exif.tobytes())
    line = json.loads(polewatch("recognize", "--json", str(tmp_path / "phone.jpg")).stdout)
    assert [p["plate"] for p in line["plates"]] == [texts[0]], line
    x, y, w, h = line["plates"][0]["box"]
    assert 500 < x + w / 2 < 680 and 300 < y + h / 2 < 390 and w > h


def test_tampered_model_is_refused_in_one_line(tmp_path, images):
    d, _ = images
    import shutil

    models = tmp_path / "models"
    shutil.copytree(MODELS_DIR, models, ignore=shutil.ignore_patterns("runs", "cache", "*.py", "__pycache__"))
    onnx_file = models / json.loads((models / "manifest.json").read_text())["models"]["ocr"]["file"]
    onnx_file.write_bytes(onnx_file.read_bytes()[:-10] + b"0123456789")
    cfg = tmp_path / "p.toml"
    cfg.write_text(f'[recognition]\nmodels_dir = "{models}"\n')
    r = polewatch("--config", str(cfg), "recognize", str(d / "crop0.png"))
    assert r.returncode == 2 and "sha256 differs" in r.stderr and "Traceback" not in r.stderr


def test_eval_scores_a_labelled_crop_folder(images, tmp_path):
    d, texts = images
    (tmp_path / "labels.csv").write_text("file,plate\n" + "".join(f"crop{i}.png,{t}\n" for i, t in enumerate(texts)))
    for i in range(len(texts)):
        (tmp_path / f"crop{i}.png").symlink_to(d / f"crop{i}.png")
    r = polewatch("eval", str(tmp_path))
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout.splitlines()[-1])
    assert s["kind"] == "crops" and s["labelled"] == len(texts)
    assert s["exact_top1"] >= 4 / 6 and s["top_n"] >= s["exact_top1"]


def crop_folder(folder: Path, d: Path, labels: list[str]) -> None:
    """A crops folder of the fixture's crops, crop i labelled labels[i]."""
    (folder / "labels.csv").write_text("file,plate\n" + "".join(f"crop{i}.png,{t}\n" for i, t in enumerate(labels)))
    for i in range(len(labels)):
        (folder / f"crop{i}.png").symlink_to(d / f"crop{i}.png")


def test_eval_lists_the_plates_it_did_not_read_right_when_asked(images, tmp_path):
    d, texts = images
    wrong = ["ZZZ999", "QQQ111"]  # labels the first two plates do not carry: two sure misses
    crop_folder(tmp_path, d, wrong + texts[2:])
    plain = polewatch("eval", str(tmp_path))
    r = polewatch("eval", "--misses", str(tmp_path))
    assert r.returncode == 0, r.stderr
    lines = [json.loads(ln) for ln in r.stdout.splitlines()]
    summary, misses = lines[-1], [ln["miss"] for ln in lines[:-1]]
    assert summary == json.loads(plain.stdout.splitlines()[-1]) | {k: summary[k] for k in summary if "latency" in k
                                                                    or k == "peak_rss_mb"}
    assert len(misses) == round(summary["labelled"] * (1 - summary["exact_top1"]))
    assert {m["truth"] for m in misses} >= set(wrong)
    for m in misses:
        assert m["found"] and m["plate"] != m["truth"] and m["image"].startswith("crop") and len(m["candidates"]) >= 1
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    (scenes / "scene.jpg").symlink_to(d / "scene.jpg")
    # the plate at 500,300 (read right) and a box over bare road where nothing is found
    (scenes / "labels.tsv").write_text(f"file\tx\ty\tw\th\tplate\nscene.jpg\t500\t300\t180\t90\t{texts[0]}\n"
                                       "scene.jpg\t40\t600\t180\t90\tNOPE123\n")
    r = polewatch("eval", "--misses", str(scenes))
    lines = [json.loads(ln) for ln in r.stdout.splitlines()]
    assert [ln["miss"] for ln in lines[:-1]] == [{"image": "scene.jpg", "truth": "NOPE123", "box": [40, 600, 180, 90],
                                                  "found": False}]
    assert lines[-1]["detected"] == 0.5 and lines[-1]["exact_top1"] == 0.5


def test_eval_all_keeps_a_sets_misses_with_its_summary(images, tmp_path):
    """`benchmarks/eval_all.py --split` judges a split run by the plates it misses: `evaluate` keeps the
    summary `polewatch eval` prints and, asked for them, its miss lines under "misses"."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from eval_all import brief, evaluate

    from benchmarks import configured

    d, texts = images
    crop_folder(tmp_path, d, ["ZZZ999"] + texts[1:])  # a label the first plate does not carry: one sure miss
    plain = evaluate(configured.polewatch_command(), tmp_path)  # the checkout's own firmware, as eval_all runs it
    asked = evaluate(CLI, tmp_path, misses=True)
    assert "misses" not in plain and plain["labelled"] == asked["labelled"] == len(texts)
    assert asked["exact_top1"] == plain["exact_top1"] <= 1 - 1 / len(texts)
    assert len(asked["misses"]) == round(len(texts) * (1 - asked["exact_top1"]))
    assert {"image": "crop0.png", "truth": "ZZZ999"}.items() <= asked["misses"][0].items()
    # the two lines a candidate is compared by: the count read right, and each miss as truth>read
    right = round(len(texts) * asked["exact_top1"])
    head, misses = brief(asked).splitlines()
    assert head.startswith(f"{tmp_path.name}: exact {right}/{len(texts)}") and "detected" not in head
    assert misses.split()[1].startswith("ZZZ999>") and len(misses.split()) == 1 + len(asked["misses"])


def test_a_benchmark_runs_the_polewatch_of_its_own_checkout(tmp_path):
    """`configured.polewatch_command` (eval_all's and precision_compare's child runs) imports the firmware of
    the checkout the benchmark lies in, not the console script installed from another: a checkout whose
    `firmware.cli` is its own answers from there."""
    import importlib.util
    import shutil

    root = Path(__file__).resolve().parents[1]
    (tmp_path / "benchmarks").mkdir()
    shutil.copy(root / "benchmarks" / "configured.py", tmp_path / "benchmarks" / "configured.py")
    (tmp_path / "firmware").mkdir()
    (tmp_path / "firmware" / "__init__.py").write_text("")
    (tmp_path / "firmware" / "cli.py").write_text("def main():\n    print(__file__)\n    return 0\n")
    spec = importlib.util.spec_from_file_location("copied_configured", tmp_path / "benchmarks" / "configured.py")
    copied = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(copied)
    out = subprocess.run(copied.polewatch_command(), capture_output=True, text=True, check=True, cwd="/")
    assert Path(out.stdout.strip()) == tmp_path / "firmware" / "cli.py"


def test_eval_reads_each_scene_as_its_transform_changed_it(images, tmp_path):
    """`evaluate(transform=)` (benchmarks/scene_conditions.py): the changed image is read and scored against
    the changed labels. The scene moved 200 px right with its box moved too reads as before; moved
    without its box, the plate is not where the label says."""
    from firmware.config import RecognitionConfig
    from firmware.evaluation import Truth, evaluate
    from firmware.recognition import Recognizer

    d, texts = images
    (tmp_path / "scene.jpg").symlink_to(d / "scene.jpg")
    (tmp_path / "labels.tsv").write_text(f"file\tx\ty\tw\th\tplate\nscene.jpg\t500\t300\t180\t90\t{texts[0]}\n")
    rec = Recognizer.from_config(RecognitionConfig(), stills=True)
    seen = []

    def moved(with_box: bool):
        def transform(name, n, img, truths):
            seen.append((name, n))
            boxes = [(x + 200, y, w, h) if with_box else (x, y, w, h) for x, y, w, h in (t.box for t in truths)]
            return np.roll(img, 200, axis=1), [Truth(b, t.plate) for b, t in zip(boxes, truths)]
        return transform

    both = evaluate(rec, tmp_path, progress=False, transform=moved(True))
    assert both["detected"] == 1.0 and both["exact_top1"] == 1.0 and both["false_detections_per_image"] == 0
    image_only = evaluate(rec, tmp_path, progress=False, transform=moved(False))
    assert image_only["detected"] == 0.0 and image_only["false_detections_per_image"] == 1.0
    assert seen == [("scene.jpg", 0), ("scene.jpg", 0)]


def test_second_look_reads_only_unsure_plates_again_in_one_batch():
    """With the shipped models: each plate under the gate costs one more OCR run of two views."""
    import numpy as np

    from firmware.config import RecognitionConfig
    from firmware.recognition import Recognizer
    from models.synth.plates import render_plate

    gate = RecognitionConfig().second_look_below
    # a pool of degraded synthetic plates, from which two the OCR is sure of and two it is not
    rng = np.random.default_rng(4)
    pool = [render_plate(rng, degrade=True)[0] for _ in range(60)]  # OCR 0.8.0 is unsure of one in 24
    first = Recognizer.from_config(RecognitionConfig(second_look_below=None)).read_crops(pool)
    sure = [c for c, r in zip(pool, first) if r.plate and r.confidence >= gate][:2]
    unsure = [c for c, r in zip(pool, first) if r.plate and r.confidence < gate][:2]
    assert len(sure) == 2 and len(unsure) == 2  # the pool must mix them for this test to say anything
    crops = [sure[0], unsure[0], sure[1], unsure[1]]
    calls: list[int] = []
    for look in (None, gate):
        rec = Recognizer.from_config(RecognitionConfig(second_look_below=look))
        run = rec.ocr.run
        rec.ocr.run = lambda batch, run=run: calls.append(len(batch)) or run(batch)
        rec.read_crops(crops)
    assert calls == [4, 4, 2 * 2]  # without, with (first read), then two views of each unsure plate only


def test_close_up_photo_is_read_whole(tmp_path, images):
    """A plate filling most of a photo (a close-up, as people photograph plates) is read: recognize
    searches stills shrunk to half as well (recognition.close_ups); switched off, it is not asked to."""
    d, texts = images
    photo = np.full((480, 640, 3), 90, np.uint8)
    photo[70:270, 40:440] = cv2.resize(cv2.imread(str(d / "crop0.png")), (400, 200))
    cv2.imwrite(str(tmp_path / "close.png"), photo)
    line = json.loads(polewatch("recognize", "--json", str(tmp_path / "close.png")).stdout)
    assert [p["plate"] for p in line["plates"]] == [texts[0]], line
    x, y, w, h = line["plates"][0]["box"]
    assert w > 300 and 40 - 30 < x < 40 + 30
    cfg = tmp_path / "p.toml"
    cfg.write_text("[recognition]\nclose_ups = false\n")
    off = json.loads(polewatch("--config", str(cfg), "recognize", "--json", str(tmp_path / "close.png")).stdout)
    assert [p["plate"] for p in off["plates"]] != [texts[0]]  # the detector alone finds pieces of it, if anything


def test_a_plate_filling_the_photo_is_read_without_crop(images):
    """A photo that is all plate (a plate photographed close, a crop given without --crop) is found by the
    plate-filling pass (detect.FILL_OUT) and read, its box about the whole image."""
    d, texts = images
    crops = sorted(d.glob("crop*.png"))
    lines = [json.loads(x) for x in polewatch("recognize", "--json", *map(str, crops)).stdout.splitlines()]
    read = [[p["plate"] for p in line["plates"]] for line in lines]
    assert sum(r == [t] for r, t in zip(read, texts)) >= 5, read
    for line in lines:
        for p in line["plates"]:
            assert p["box"][2] > 0.7 * 240, line
