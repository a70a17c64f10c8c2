"""Recognition runtimes at their boundary: TensorRT engine cache and buffers without a GPU,
the runtime registry's fallback, and the model manifest's integrity checks."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from firmware.config import RecognitionConfig
from firmware.recognition import manifest, runtime
from firmware.recognition.manifest import ModelCorrupt, ModelMissing, ModelSpec
from firmware.recognition.tensorrt import TensorRTRuntime, engine_key
from tests.fake_tensorrt import FakeCudart, FakeTensorRT


def tiny_onnx(path: Path, scale: float = 2.0) -> Path:
    """A dynamic-batch model shaped like the OCR input: y = relu(x) * scale."""
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 1, 8, 16])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 1, 8, 16])
    s = helper.make_tensor("s", TensorProto.FLOAT, [], [scale])
    g = helper.make_graph([helper.make_node("Relu", ["image"], ["r"]), helper.make_node("Mul", ["r", "s"], ["logits"])],
                          "tiny", [x], [y], [s])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, str(path))
    return path


def spec_for(path: Path, name: str = "ocr") -> ModelSpec:
    return ModelSpec(name, path, "1", manifest.sha256_file(path), ["N", 1, 8, 16])


@pytest.fixture
def cfg(tmp_path) -> RecognitionConfig:
    c = RecognitionConfig(runtime="tensorrt")
    c.tensorrt.engine_cache = tmp_path / "engines"
    return c


def test_engine_key_changes_with_model_tensorrt_gpu_and_precision(tmp_path):
    s = spec_for(tiny_onnx(tmp_path / "a.onnx"))
    base = engine_key(s, "10.3.0", "Orin sm87", "fp16")
    assert base == engine_key(s, "10.3.0", "Orin sm87", "fp16")
    s2 = spec_for(tiny_onnx(tmp_path / "b.onnx", 3.0))
    assert len({base, engine_key(s2, "10.3.0", "Orin sm87", "fp16"), engine_key(s, "8.6.1", "Orin sm87", "fp16"),
                engine_key(s, "10.3.0", "RTX 4090 sm89", "fp16"), engine_key(s, "10.3.0", "Orin sm87", "fp32")}) == 5


def test_builds_once_then_loads_from_cache_and_matches_onnxruntime(tmp_path, cfg):
    import onnxruntime as ort

    spec = spec_for(tiny_onnx(tmp_path / "m.onnx"))
    trt, cud = FakeTensorRT(), FakeCudart()
    sess = TensorRTRuntime(cfg, trt, cud).load(spec)
    assert [c for c in trt.calls if c[0] == "build"] == [("build", "image", "fp16", 1)]
    engines = list(cfg.tensorrt.engine_cache.iterdir())
    assert len(engines) == 1 and "fp16" in engines[0].name
    x = np.random.default_rng(0).normal(size=(5, 1, 8, 16)).astype(np.float32)
    got = sess.run(x)[0]
    ref = ort.InferenceSession(str(spec.path), providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]
    np.testing.assert_allclose(got, ref, atol=1e-5)
    assert "cudaMemcpyHostToDevice" in cud.calls and "cudaMemcpyDeviceToHost" in cud.calls

    trt2 = FakeTensorRT()
    TensorRTRuntime(cfg, trt2, FakeCudart()).load(spec)
    assert not [c for c in trt2.calls if c[0] == "build"], "cached engine must be reused"


def test_rebuilds_when_model_changes_or_cache_is_corrupt(tmp_path, cfg):
    p = tiny_onnx(tmp_path / "m.onnx")
    trt = FakeTensorRT()
    TensorRTRuntime(cfg, trt, FakeCudart()).load(spec_for(p))
    tiny_onnx(p, 5.0)  # a new model version in place
    TensorRTRuntime(cfg, trt, FakeCudart()).load(spec_for(p))
    assert len([c for c in trt.calls if c[0] == "build"]) == 2
    assert len(list(cfg.tensorrt.engine_cache.iterdir())) == 2
    for e in cfg.tensorrt.engine_cache.iterdir():
        e.write_bytes(b"garbage")
    sess = TensorRTRuntime(cfg, trt, FakeCudart()).load(spec_for(p))
    assert len([c for c in trt.calls if c[0] == "build"]) == 3
    np.testing.assert_allclose(sess.run(np.ones((1, 1, 8, 16), np.float32))[0], 5.0)


def test_fp32_when_gpu_lacks_fast_fp16_and_int8_needs_calibration_or_a_copy(tmp_path, cfg):
    spec = spec_for(tiny_onnx(tmp_path / "m.onnx"))
    trt = FakeTensorRT(fast_fp16=False)
    TensorRTRuntime(cfg, trt, FakeCudart()).load(spec)
    assert ("build", "image", "fp32", 1) in trt.calls
    cfg.tensorrt.precision = "int8"  # no calibration_dir: INT8 is not attempted
    r = TensorRTRuntime(cfg, FakeTensorRT(fast_int8=True), FakeCudart())
    assert r.plan(r.trt.Builder(None), spec) == ("fp16", spec)


def test_tensorrt_11_builds_a_model_without_copies_as_a_strongly_typed_fp32_engine(tmp_path, cfg, caplog):
    """TensorRT 11 removed the precision builder flags (BuilderFlag.FP16/INT8, platform_has_fast_fp16,
    int8_calibrator): an FP32 model with no reduced-precision copies builds as a strongly typed FP32
    engine, keyed so, with a warning."""
    import onnxruntime as ort

    spec = spec_for(tiny_onnx(tmp_path / "m.onnx"))
    trt = FakeTensorRT(version="11.4.0", weak_typing=False)
    with caplog.at_level("WARNING"):
        sess = TensorRTRuntime(cfg, trt, FakeCudart()).load(spec)  # cfg asks for fp16
    strongly = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    assert ("network", strongly) in trt.calls and ("build", "image", "fp32", 1) in trt.calls
    assert [e.name for e in cfg.tensorrt.engine_cache.iterdir() if "fp32" in e.name]
    assert "strongly typed" in caplog.text
    x = np.random.default_rng(1).normal(size=(3, 1, 8, 16)).astype(np.float32)
    ref = ort.InferenceSession(str(spec.path), providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]
    np.testing.assert_allclose(sess.run(x)[0], ref, atol=1e-5)
    cfg.tensorrt.precision = "int8"
    cfg.tensorrt.calibration_dir = tmp_path
    r = TensorRTRuntime(cfg, trt, FakeCudart())
    assert r.plan(r.trt.Builder(None), spec) == ("fp32", spec)


def with_copies(tmp_path: Path, precisions=("fp16", "int8")) -> ModelSpec:
    """The tiny model with reduced-precision copies made as `models/precision.py` makes them (the int8 one
    calibrated on random inputs), listed in its spec's variants."""
    from models import precision as mp

    src = tiny_onnx(tmp_path / "m.onnx")
    spec = spec_for(src)
    variants = {}
    for p in precisions:
        dst = tmp_path / mp.variant_file("m.onnx", p)
        if p == "fp16":
            mp.to_fp16(src, dst)
        else:
            rng = np.random.default_rng(2)
            mp.to_int8(src, dst, [rng.normal(size=(4, 1, 8, 16)).astype(np.float32) for _ in range(8)])
        variants[p] = {"file": dst.name, "sha256": manifest.sha256_file(dst), "of": spec.sha256}
    return ModelSpec(spec.name, spec.path, spec.version, spec.sha256, spec.input, {"variants": variants})


def test_tensorrt_11_builds_fp16_and_int8_engines_from_the_models_reduced_precision_copies(tmp_path, cfg, caplog):
    """Strongly typed TensorRT runs a model in its own types: fp16 and int8 come from the copies the
    manifest lists (fp16 weights; Q/DQ nodes), each its own engine keyed by the copy's checksum, with
    outputs near the FP32 model's; int8 falls back to the fp16 copy, and a model with no copies to FP32."""
    import onnxruntime as ort

    spec = with_copies(tmp_path)
    x = np.random.default_rng(1).normal(size=(3, 1, 8, 16)).astype(np.float32)
    ref = ort.InferenceSession(str(spec.path), providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]
    trt = FakeTensorRT(version="11.4.0", weak_typing=False)
    for precision, atol in (("fp16", 0.01), ("int8", 0.1)):
        cfg.tensorrt.precision = precision
        r = TensorRTRuntime(cfg, trt, FakeCudart())
        used, source = r.plan(trt.Builder(None), spec)
        assert used == precision and source.path.name == f"m.{precision}.onnx"
        assert source.sha256 == spec.extra["variants"][precision]["sha256"]
        sess = r.load(spec)
        assert ("build", "image", precision, 1) in trt.calls
        np.testing.assert_allclose(sess.run(x)[0], ref, atol=atol)
    names = sorted(e.name for e in cfg.tensorrt.engine_cache.iterdir())
    assert len(names) == 2 and any("fp16" in n for n in names) and any("int8" in n for n in names)
    (tmp_path / "b").mkdir()
    only16 = with_copies(tmp_path / "b", ("fp16",))
    cfg.tensorrt.precision = "int8"
    cfg.tensorrt.calibration_dir = tmp_path  # no calibrator on TensorRT 11: said, and not used
    with caplog.at_level("WARNING"):
        assert TensorRTRuntime(cfg, trt, FakeCudart()).plan(trt.Builder(None), only16)[0] == "fp16"
    assert "no INT8 calibrator" in caplog.text


def test_tensorrt_10_int8_without_calibration_images_builds_the_shipped_int8_copy(tmp_path, cfg):
    """With fast INT8 and no calibration_dir, the Q/DQ copy carries its own scales: INT8 flag, no
    calibrator; without a copy INT8 is not attempted (fp16)."""
    spec = with_copies(tmp_path, ("int8",))
    cfg.tensorrt.precision = "int8"
    trt = FakeTensorRT(fast_int8=True)
    TensorRTRuntime(cfg, trt, FakeCudart()).load(spec)
    assert ("build", "image", "int8", 1) in trt.calls and ("calibrator",) not in trt.calls
    r = TensorRTRuntime(cfg, FakeTensorRT(fast_int8=False), FakeCudart())
    assert r.plan(r.trt.Builder(None), spec) == ("fp16", spec)


def test_a_reduced_precision_copy_is_checked_like_the_model(tmp_path):
    spec = with_copies(tmp_path, ("fp16",))
    assert manifest.variant(spec, "int8") is None
    copy = manifest.variant(spec, "fp16")
    assert copy.version == "1-fp16" and "variants" not in copy.extra
    stale = ModelSpec(spec.name, spec.path, spec.version, "0" * 64, spec.input, spec.extra)
    with pytest.raises(ModelCorrupt, match="made from another"):
        manifest.variant(stale, "fp16")
    (tmp_path / "m.fp16.onnx").write_bytes(b"tampered")
    with pytest.raises(ModelCorrupt, match="sha256 differs"):
        manifest.variant(spec, "fp16")
    (tmp_path / "m.fp16.onnx").unlink()
    with pytest.raises(ModelMissing, match="fp16 copy"):
        manifest.variant(spec, "fp16")


def test_unparseable_model_is_a_clear_error(tmp_path, cfg):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(RuntimeError, match="could not parse"):
        TensorRTRuntime(cfg, FakeTensorRT(), FakeCudart()).load(spec_for(bad))


def test_missing_tensorrt_falls_back_or_names_the_package(monkeypatch, cfg):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import fails as on a machine without it
    assert runtime.create(cfg).name == "onnxruntime"
    cfg.tensorrt.fallback_to_onnxruntime = False
    with pytest.raises(runtime.RuntimeUnavailable, match="TensorRT is not installed"):
        runtime.create(cfg)


def test_manifest_refuses_missing_and_tampered_models(tmp_path):
    with pytest.raises(ModelMissing):
        manifest.load(tmp_path)
    p = tiny_onnx(tmp_path / "m.onnx")
    entry = {"file": "m.onnx", "version": "1", "sha256": manifest.sha256_file(p), "input": ["N", 1, 8, 16]}
    (tmp_path / "manifest.json").write_text(json.dumps({"models": {"ocr": entry}}))
    assert manifest.load(tmp_path)["ocr"].sha256 == entry["sha256"]
    with open(p, "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ModelCorrupt, match="sha256 differs"):
        manifest.load(tmp_path)
    p.unlink()
    with pytest.raises(ModelMissing, match="missing"):
        manifest.load(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ModelCorrupt, match="unreadable"):
        manifest.load(tmp_path)


def test_shipped_manifest_matches_shipped_models():
    from models import MODELS_DIR

    if not (MODELS_DIR / "manifest.json").exists():
        pytest.skip("models not exported yet")
    specs = manifest.load(MODELS_DIR)
    assert {"detector", "ocr"} <= specs.keys()
    assert specs["detector"].path.stat().st_size <= 15 * 1024 * 1024
    for spec in specs.values():  # TensorRT 11's fp16 and int8 copies, made from these very models
        for precision in ("fp16", "int8"):
            copy = manifest.variant(spec, precision)
            assert copy is not None and copy.path.stat().st_size < spec.path.stat().st_size


def test_a_candidate_folder_reads_a_trained_file_in_place_of_the_shipped_one(tmp_path):
    """`manifest_tool.candidate` (the benchmarks' --ocr-model): the folder the recognizer loads holds the
    candidate under the shipped name with its own checksum and a version naming it, the other model as
    shipped, no reduced-precision copies (made from the shipped file, they would be checked against the
    wrong one); the shipped folder is left as it was, and an unknown model name is refused."""
    from firmware.recognition import Recognizer
    from models import MODELS_DIR
    from models.manifest_tool import candidate

    shipped = (MODELS_DIR / "manifest.json").read_text()
    cand = tmp_path / "run.onnx"
    model = onnx.load(str(MODELS_DIR / "plate_ocr.onnx"))
    model.doc_string = "a candidate"  # other bytes, same network
    onnx.save(model, str(cand))
    out = candidate(tmp_path / "models", {"ocr": cand})
    specs = manifest.load(out)
    assert specs["ocr"].version == "candidate run.onnx" and specs["ocr"].path.read_bytes() == cand.read_bytes()
    assert specs["detector"].path.read_bytes() == (MODELS_DIR / "plate_detector.onnx").read_bytes()
    assert manifest.variant(specs["ocr"], "fp16") is None and manifest.variant(specs["detector"], "int8") is None
    assert (MODELS_DIR / "manifest.json").read_text() == shipped
    r = Recognizer(RecognitionConfig(), specs)
    assert r.versions["ocr"] == "candidate run.onnx" and r.read_crops([np.full((40, 90, 3), 200, np.uint8)])
    with pytest.raises(ValueError, match="no model named plate"):
        candidate(tmp_path / "other", {"plate": cand})
    # a candidate cut for narrower crops (OCR 0.7.0's 128) carries its own input size into the folder, so this
    # firmware refuses it by name instead of reading every plate squeezed to another width
    model.graph.input[0].type.tensor_type.shape.dim[3].dim_value = 128
    onnx.save(model, str(tmp_path / "narrow.onnx"))
    narrow = manifest.load(candidate(tmp_path / "narrow", {"ocr": tmp_path / "narrow.onnx"}))
    assert narrow["ocr"].input == ["N", 1, 64, 128] and specs["ocr"].input == ["N", 1, 64, 192]
    with pytest.raises(ModelCorrupt, match="reads 64x128 crops"):
        Recognizer(RecognitionConfig(), narrow)
    # the benchmarks' options make the folder once however often a benchmark loads its configuration
    import argparse

    from benchmarks import configured

    ap = argparse.ArgumentParser()
    configured.add_arguments(ap)
    args = ap.parse_args(["--ocr-model", str(cand)])
    first = configured.load(args).recognition.models_dir
    assert configured.load(args).recognition.models_dir == first
    assert manifest.load(first)["ocr"].version == "candidate run.onnx"


def test_recognizer_refuses_an_ocr_model_of_another_input_size(tmp_path):
    """An update that pairs firmware and an OCR model cut for another crop size must fail by name,
    not read every plate through a stretched crop."""
    import shutil

    from firmware.recognition import Recognizer
    from firmware.recognition import ocr as ocr_mod
    from models import MODELS_DIR

    for f in ("manifest.json", "plate_detector.onnx", "plate_ocr.onnx"):
        shutil.copy(MODELS_DIR / f, tmp_path / f)
    data = json.loads((tmp_path / "manifest.json").read_text())
    assert data["models"]["ocr"]["input"][2:] == [ocr_mod.OCR_H, ocr_mod.OCR_W]
    Recognizer(RecognitionConfig(), manifest.load(tmp_path))  # the shipped pair loads
    data["models"]["ocr"]["input"] = ["N", 1, 64, ocr_mod.OCR_W - 64]
    (tmp_path / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ModelCorrupt, match=rf"reads 64x{ocr_mod.OCR_W - 64} crops.*makes 64x{ocr_mod.OCR_W}"):
        Recognizer(RecognitionConfig(), manifest.load(tmp_path))


def test_onnxruntime_sessions_use_the_configured_threads_and_do_not_spin(tmp_path):
    """The detector and the OCR run one after the other, each with its own thread pool; a pool
    spinning after its work holds a core the other needs (on 2 cores a frame read took 26-34 ms
    instead of 16), so the sessions are built without spinning."""
    from firmware.recognition.onnxrt import OnnxRuntime

    sess = OnnxRuntime(RecognitionConfig(threads=2)).load(spec_for(tiny_onnx(tmp_path / "m.onnx"))).sess
    opts = sess.get_session_options()
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert opts.intra_op_num_threads == 2
    x = np.full((1, 1, 8, 16), -1.0, np.float32)
    x[0, 0, 0, 0] = 3.0
    out = OnnxRuntime(RecognitionConfig(threads=1)).load(spec_for(tmp_path / "m.onnx")).run(x)[0]
    assert out[0, 0, 0, 0] == 6.0 and out.sum() == 6.0


def _compare_inputs(root: Path) -> Path:
    """A --data folder for benchmarks/tensorrt_compare.py: synthetic plate crops with labels and a frame."""
    import cv2

    from models.synth.plates import render_plate

    rng = np.random.default_rng(3)
    (root / "crops").mkdir(parents=True)
    (root / "frames").mkdir()
    frame = np.full((720, 1280, 3), 90, np.uint8)
    rows = ["file,state,plate"]
    for i in range(4):
        plate, text = render_plate(rng, None, False, degrade=False)
        cv2.imwrite(str(root / "crops" / f"p{i}.png"), plate)
        rows.append(f"p{i}.png,ca,{text}")
        small = cv2.resize(plate, (200, 100), interpolation=cv2.INTER_AREA)
        frame[100 + 150 * i: 200 + 150 * i, 200 + 200 * i: 400 + 200 * i] = small
    (root / "crops" / "labels.csv").write_text("\n".join(rows) + "\n")
    cv2.imwrite(str(root / "frames" / "f0.jpg"), frame)
    return root


def test_tensorrt_compare_runs_whole_against_the_fake_gpu_and_says_when_tensorrt_is_absent(tmp_path, monkeypatch,
                                                                                           capsys):
    """The GPU check's script end to end at the boundary: the fake engine runs ONNX Runtime underneath,
    so every comparison must come out equal; without TensorRT it exits 2 with one line, no traceback."""
    import runpy
    import subprocess

    from firmware.recognition import tensorrt as trt_module

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "tensorrt_compare.py"
    data = _compare_inputs(tmp_path / "data")
    fake_trt, fake_cudart = FakeTensorRT(), FakeCudart()
    monkeypatch.setattr(trt_module, "_import_tensorrt", lambda: fake_trt)
    monkeypatch.setattr(trt_module, "_import_cudart", lambda: fake_cudart)
    monkeypatch.setattr(sys, "argv", [str(script), "--data", str(data), "--iters", "2",
                                      "--engines", str(tmp_path / "engines")])
    runpy.run_path(str(script), run_name="__main__")
    report = json.loads(capsys.readouterr().out)
    assert report["gpu"] == "Orin (fake) sm87" and report["precision"] == "fp16"
    assert report["ocr"]["batch"] == 4 and report["ocr"]["max_abs_diff"] == 0.0
    assert report["ocr"]["top1_agreement"] == 1.0 and report["ocr"]["exact_trt"] == report["ocr"]["exact_ort"]
    assert report["detector"]["max_abs_diff"] == 0.0 and report["detector"]["frames"] == 1
    counts = report["detector"]["detections_trt_vs_ort"][0]
    assert counts[0] == counts[1] == report["detector"]["boxes_matching_iou_0.9"][0] >= 1
    assert report["reads"]["frames_read_alike"] == 1 and report["reads"]["reads_trt"] == report["reads"]["reads_ort"]
    assert len(list((tmp_path / "engines").glob("*.engine"))) == 2  # one engine per model, cached

    if importlib.util.find_spec("tensorrt") is None:  # the machine the suite runs on has no TensorRT
        r = subprocess.run([sys.executable, str(script), "--data", str(data)], capture_output=True, text=True)
        assert r.returncode == 2 and r.stdout == ""
        assert r.stderr.startswith("tensorrt_compare: TensorRT is not installed") and "Traceback" not in r.stderr


def test_read_floor_comes_from_the_ocr_manifest_unless_configured(tmp_path):
    """The read-confidence floor leans on the OCR's calibration, so it ships in the OCR's manifest
    entry; the configuration overrides it, and a manifest without one keeps every read."""
    import shutil

    from firmware.recognition import Recognizer
    from firmware.records import PlateResult
    from models import MODELS_DIR

    for f in ("plate_detector.onnx", "plate_ocr.onnx", "manifest.json"):
        shutil.copy(MODELS_DIR / f, tmp_path / f)
    data = json.loads((tmp_path / "manifest.json").read_text())
    assert data["models"]["ocr"]["min_read_confidence"] == 0.05  # the shipped model's, measured
    data["models"]["ocr"]["min_read_confidence"] = 0.5
    (tmp_path / "manifest.json").write_text(json.dumps(data))
    sure = PlateResult((0, 0, 100, 30), 0.99, "7ABC123", 0.6)
    unsure = PlateResult((0, 0, 100, 30), 0.99, "7ABC123", 0.4)

    rec = Recognizer(RecognitionConfig(), manifest.load(tmp_path))
    assert rec.min_read == 0.5 and rec.keeps(sure) and not rec.keeps(unsure)
    rec = Recognizer(RecognitionConfig(min_read_confidence=0.0), manifest.load(tmp_path))
    assert rec.min_read == 0.0 and rec.keeps(unsure)
    del data["models"]["ocr"]["min_read_confidence"]
    (tmp_path / "manifest.json").write_text(json.dumps(data))
    assert Recognizer(RecognitionConfig(), manifest.load(tmp_path)).min_read == 0.0


def test_a_state_name_is_the_plates_legend_not_a_read():
    """FLORIDA under the serial, read from a box of its own, is not a plate (the simulated road's phantom);
    without the US rules, or for a serial that merely contains a name, the read stays."""
    from firmware.recognition import Recognizer, ocr
    from firmware.records import PlateResult

    def result(text: str) -> PlateResult:
        return PlateResult((0, 0, 100, 30), 0.99, text, 0.9)

    us = Recognizer.from_config(RecognitionConfig())
    assert not us.keeps(result("FLORIDA")) and not us.keeps(result("NEWYORK"))
    assert us.keeps(result("7ABC123")) and us.keeps(result("OHIO1"))
    assert Recognizer.from_config(RecognitionConfig(us_format_rules=False)).keeps(result("FLORIDA"))
    assert all(len(n) <= ocr.SLOTS and n.isalpha() for n in ocr.US_STATE_NAMES)


def test_int8_calibration_images_are_none_of_the_sets_the_copies_are_measured_on():
    from models import DATASETS, us_fold
    from models import precision as mp
    from models.detector.data import ca_half

    if not (DATASETS / "scenes-ca").is_dir():
        pytest.skip("datasets not here")
    det, rec = mp.calibration_files("detector", DATASETS), mp.calibration_files("ocr", DATASETS)
    assert len(det) >= 200 and len(rec) >= 300
    for f in det + rec:
        assert f.parent.name not in ("crops-ar", "scenes-eu", "scenes-br", "scenes-us-speed")
        assert not (f.parent.name == "scenes-ca" and ca_half(f.name) == "holdout")
        assert not (f.parent.name == "us-crops-dev" and us_fold(f.name) == "val")


def test_precision_compare_promotes_each_copy_to_a_models_folder_the_recognizer_loads(tmp_path):
    """benchmarks/precision_compare.py measures a copy by naming it as the model in a folder of its own:
    that folder's manifest must load, checksums and all, and hold the copy's bytes."""
    from benchmarks.precision_compare import promoted
    from models import MODELS_DIR

    for precision in ("fp32", "fp16", "int8"):
        specs = manifest.load(promoted(MODELS_DIR, precision, tmp_path / precision))
        for name, spec in specs.items():
            shipped = manifest.load(MODELS_DIR)[name]
            want = shipped if precision == "fp32" else manifest.variant(shipped, precision)
            assert spec.sha256 == want.sha256 and spec.path.read_bytes() == want.path.read_bytes()
            assert "variants" not in spec.extra
