"""Cameras: simulated road, replay, OpenCV, reconnect with back-off."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from drivers.camera import Camera, CameraError, CameraUnavailable, EndOfStream, Frame, ReconnectingCamera, make_backend
from drivers.camera.base import IMAGE_SUFFIXES
from drivers.camera.simulated import SimulatedRoad
from firmware.config import CameraConfig, SimulatedRoadConfig


def sim_cfg(**kw) -> CameraConfig:
    return CameraConfig(simulated=SimulatedRoadConfig(realtime=False, **kw))


def test_simulated_road_frames_carry_metadata_and_ground_truth():
    cam = SimulatedRoad(sim_cfg(seed=5, receding_fraction=0.5), illuminator_state=lambda: "off", max_vehicles=3)
    frames = list(cam.frames())
    assert cam.spawned == 3 and cam.passed == 3 and len(set(cam.plates)) == 3
    f = frames[0]
    assert f.image.shape == (720, 1280, 3) and f.image.dtype == np.uint8
    assert [x.number for x in frames[:3]] == [1, 2, 3]
    assert frames[1].monotonic - frames[0].monotonic == pytest.approx(1 / 30)
    assert (frames[1].utc - frames[0].utc).total_seconds() == pytest.approx(1 / 30, abs=1e-5)
    assert f.exposure_us == pytest.approx(1e6 / (18 * 35)) and f.gain == 1.5 and f.illuminator == "off"
    seen = {t.plate for fr in frames for t in (fr.truth or []) if t.plate_visible}
    assert seen == set(cam.plates)
    dirs = {t.direction for fr in frames for t in (fr.truth or [])}
    assert dirs <= {"approaching", "receding"} and dirs
    # a truth box really holds a plate: brighter than the car body around it
    fr = next(fr for fr in frames if fr.truth and fr.truth[0].plate_visible and fr.truth[0].plate_box[2] > 80)
    x, y, w, h = fr.truth[0].plate_box
    assert fr.image[y : y + h, x : x + w].mean() > 120


def test_simulated_road_is_reproducible_and_ends():
    a = [f.image for f in SimulatedRoad(sim_cfg(seed=9), max_vehicles=1).frames()]
    b = [f.image for f in SimulatedRoad(sim_cfg(seed=9), max_vehicles=1).frames()]
    assert len(a) == len(b) and np.array_equal(a[20], b[20])
    cam = SimulatedRoad(sim_cfg(seed=9), max_vehicles=1)
    with pytest.raises(EndOfStream):
        while True:
            cam.read()


def test_simulated_road_draws_its_die_font_share_of_plates(monkeypatch):
    """[camera.simulated] die_fonts: that share of the road's plates in plate-die lookalike fonts."""
    from models.synth import plates

    drawn: list[str] = []
    choose = plates._font_choice

    def spy(*a, **kw):
        font, bold = choose(*a, **kw)
        drawn.append(font)
        return font, bold

    monkeypatch.setattr(plates, "_font_choice", spy)
    list(SimulatedRoad(sim_cfg(seed=9, die_fonts=1.0), max_vehicles=3).frames())
    assert len(drawn) == 3 and all(f in plates.DIE_FONT_FILES for f in drawn)
    drawn.clear()
    list(SimulatedRoad(sim_cfg(seed=9), max_vehicles=3).frames())  # the default: the plates of old
    assert len(drawn) == 3 and not any(f in plates.DIE_FONT_FILES for f in drawn)


def test_simulated_road_draws_a_dies_serifed_i_by_default_and_the_fonts_bare_i_at_zero(monkeypatch):
    """[camera.simulated] die_i: the road's Is serifed as real US dies draw them (default 1); 0 redraws the
    fonts' bare-bar I of the benchmarks before session 34 on the same vehicles."""
    from models.synth import plates

    asked: list[float] = []
    render = plates.render_plate

    def spy(*a, **kw):
        asked.append(kw.get("die_i_share", 0.0))
        return render(*a, **kw)

    monkeypatch.setattr(plates, "render_plate", spy)
    serifed = SimulatedRoad(sim_cfg(seed=9), max_vehicles=3)
    list(serifed.frames())
    bare = SimulatedRoad(sim_cfg(seed=9, die_i=0.0), max_vehicles=3)
    list(bare.frames())
    assert asked == [1.0] * 3 + [0.0] * 3
    assert serifed.plates == bare.plates        # the same vehicles either way


def test_night_scene_needs_the_illuminator():
    def plate_brightness(state):
        cam = SimulatedRoad(sim_cfg(seed=2, night=True, receding_fraction=0), illuminator_state=lambda: state,
                            max_vehicles=1)
        for f in cam.frames():
            if f.truth and f.truth[0].plate_visible and f.truth[0].plate_box[2] > 100:
                x, y, w, h = f.truth[0].plate_box
                return f.image.mean(), f.image[y : y + h, x : x + w].mean(), f
    scene_on, plate_on, f = plate_brightness("on")
    _, plate_off, _ = plate_brightness("off")
    assert scene_on < 40 and f.gain > 6  # dark scene, high gain: the illuminator goes to night
    assert plate_on > 2 * plate_off and f.illuminator == "on"
    assert np.array_equal(f.image[..., 0], f.image[..., 2])  # monochrome near infrared


def _folder(tmp_path: Path, n: int = 5) -> Path:
    d = tmp_path / "imgs"
    d.mkdir()
    for i in range(n):
        cv2.imwrite(str(d / f"{i:03d}.png"), np.full((48, 64, 3), i * 20, np.uint8))
    (d / "002b.jpg").write_bytes(b"not a jpeg")  # corrupt file between good ones
    return d


def test_replay_image_folder_skips_corrupt_and_ends(tmp_path):
    cam = make_backend(CameraConfig(backend="replay", source=str(_folder(tmp_path)), replay_realtime=False))
    cam.open()
    frames = []
    with pytest.raises(EndOfStream):
        while True:
            frames.append(cam.read())
    assert [int(f.image[0, 0, 0]) for f in frames] == [0, 20, 40, 60, 80]
    assert cam.skipped == 1 and not cam.live


def test_replay_folder_reads_every_format_recognize_reads(tmp_path):
    from firmware.imageio import IMAGE_SUFFIXES as read_by_recognize
    from PIL import Image

    d = tmp_path / "formats"
    d.mkdir()
    Image.fromarray(np.full((48, 64, 3), 100, np.uint8)).save(d / "a.gif")
    cv2.imwrite(str(d / "b.jp2"), np.full((48, 64, 3), 200, np.uint8))
    (d / "c.txt").write_text("not an image")
    cam = make_backend(CameraConfig(backend="replay", source=str(d), replay_realtime=False))
    cam.open()
    assert [int(cam.read().image.mean()) for _ in range(2)] == [100, 200]
    with pytest.raises(EndOfStream):
        cam.read()
    assert cam.skipped == 0 and read_by_recognize == IMAGE_SUFFIXES


def test_replay_video_file_and_loop(tmp_path):
    path = tmp_path / "v.avi"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(6):
        w.write(np.full((48, 64, 3), i * 40, np.uint8))
    w.release()
    cam = make_backend(CameraConfig(backend="replay", source=str(path), replay_realtime=False, replay_loop=True))
    cam.open()
    vals = [round(cam.read().image.mean() / 40) for _ in range(8)]
    assert vals == [0, 1, 2, 3, 4, 5, 0, 1]
    assert cam.fps == pytest.approx(10)


def test_replay_missing_source_is_named(tmp_path):
    cam = make_backend(CameraConfig(backend="replay", source=str(tmp_path / "nope")))
    with pytest.raises(CameraUnavailable, match="no such video file or image folder"):
        cam.open()


def test_opencv_missing_device_is_unavailable():
    cam = make_backend(CameraConfig(backend="opencv", source="/dev/video-polewatch-missing"))
    with pytest.raises(CameraUnavailable, match="cannot open"):
        cam.open()


class FlakySensor(Camera):
    """Hardware edge stand-in: a live sensor that fails, stalls or works as the test says."""

    live = True

    def __init__(self, plan: list[str]):
        super().__init__()
        self.plan = plan

    def open(self):
        if self.plan and self.plan[0] == "absent":
            self.plan.pop(0)
            raise CameraUnavailable("no camera on the CSI port")

    def read(self, timeout_s=1.0):
        step = self.plan.pop(0) if self.plan else "frame"
        if step == "error":
            raise CameraError("USB disconnect")
        if step == "none":
            return None
        return self._frame(np.zeros((4, 4, 3), np.uint8))

    def close(self):
        pass


def test_reconnect_backs_off_and_recovers_without_raising():
    now = {"t": 0.0}
    plan = ["absent", "absent", "frame", "error", "absent", "frame"]
    cam = ReconnectingCamera(lambda: FlakySensor(plan), initial_s=1, max_s=4,
                             clock=lambda: now["t"], sleep=lambda s: now.__setitem__("t", now["t"] + s))
    cam.open()
    assert cam.state == "unavailable" and cam.last_error == "no camera on the CSI port"
    got = []
    for _ in range(12):
        got.append(cam.read(1.0) is not None)
    assert got.count(True) >= 2 and cam.reconnects == 2 and cam.failures == 4
    assert cam.state == "streaming"
    # back-off doubled 1, 2, 4 s and was reset by the frame in between: about 1+2+1 s of waiting
    assert 4.0 <= now["t"] <= 6.0


def test_stalled_live_camera_is_reopened():
    now = {"t": 0.0}
    opened = []

    def factory():
        opened.append(1)
        return FlakySensor(["frame"] + ["none"] * 3 if len(opened) == 1 else [])

    cam = ReconnectingCamera(factory, initial_s=0.5, stall_timeout_s=2.0,
                             clock=lambda: now["t"], sleep=lambda s: now.__setitem__("t", now["t"] + s))
    cam.open()
    assert isinstance(cam.read(), Frame)
    states = []
    for _ in range(6):
        now["t"] += 1.0
        f = cam.read()
        states.append(cam.state)
    assert "stalled" in states and len(opened) == 2 and isinstance(f, Frame) and cam.state == "streaming"
