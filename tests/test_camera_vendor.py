"""picamera2 and jetson-utils backends at their API boundary: fakes of the vendor modules
record what the backend asked of the hardware."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from drivers.camera import CameraError, CameraUnavailable, make_backend
from firmware.config import CameraConfig


class FakeRequest:
    def __init__(self, image, md):
        self.image, self.md, self.released = image, md, False

    def make_array(self, name):
        assert name == "main"
        return self.image

    def get_metadata(self):
        return dict(self.md)

    def release(self):
        self.released = True


class FakePicamera2:
    instances: list = []

    def __init__(self, index=0):
        self.index, self.calls, self.brightness, self.timeout = index, [], 20, False
        FakePicamera2.instances.append(self)

    def create_video_configuration(self, main, controls, buffer_count):
        self.calls.append(("config", main, dict(controls), buffer_count))
        return {"main": main, "controls": controls}

    def configure(self, cfg):
        self.calls.append(("configure",))

    def start(self):
        self.calls.append(("start",))

    def capture_request(self, wait):
        assert wait is False
        return "job"

    def wait(self, job, timeout):
        if self.timeout:
            raise TimeoutError
        self.last = FakeRequest(np.full((720, 1280, 3), self.brightness, np.uint8),
                                {"ExposureTime": 1587, "AnalogueGain": 2.0, "SensorTimestamp": 123})
        return self.last

    def set_controls(self, c):
        self.calls.append(("set_controls", dict(c)))

    def stop(self):
        self.calls.append(("stop",))

    def close(self):
        self.calls.append(("close",))


@pytest.fixture
def picamera2(monkeypatch):
    mod = types.ModuleType("picamera2")
    mod.Picamera2 = FakePicamera2
    FakePicamera2.instances = []
    monkeypatch.setitem(sys.modules, "picamera2", mod)
    return FakePicamera2


def test_picamera2_freezes_motion_with_manual_shutter_and_gain_ceiling(picamera2):
    cfg = CameraConfig(backend="picamera2", speed_limit_mph=35, fps=30, max_analogue_gain=8,
                       sensor_crop=(100, 200, 3000, 1700))
    cam = make_backend(cfg, illuminator_state=lambda: "on")
    cam.open()
    fake = picamera2.instances[0]
    _, main, controls, _ = fake.calls[0]
    assert main == {"size": (1280, 720), "format": "RGB888"}
    assert controls["AeEnable"] is False
    assert controls["ExposureTime"] == int(1e6 / (18 * 35)) <= 1e6 / (18 * 35)
    assert controls["FrameDurationLimits"] == (33333, 33333)
    assert controls["ScalerCrop"] == (100, 200, 3000, 1700)
    for _ in range(40):  # a dark scene drives gain up, never past the ceiling
        f = cam.read()
    gains = [c[1]["AnalogueGain"] for c in fake.calls if c[0] == "set_controls"]
    assert gains == sorted(gains) and gains[-1] == 8.0
    assert fake.last.released and f.exposure_us == 1587 and f.gain == 2.0 and f.illuminator == "on"
    assert f.extra["sensor_timestamp_ns"] == 123
    fake.timeout = True
    assert cam.read(0.2) is None
    cam.close()
    assert ("stop",) in fake.calls and ("close",) in fake.calls


def test_picamera2_shutter_never_exceeds_frame_time(picamera2):
    cam = make_backend(CameraConfig(backend="picamera2", speed_limit_mph=1, fps=60))
    cam.open()
    assert picamera2.instances[0].calls[0][2]["ExposureTime"] == int(1e6 / 60)


def test_missing_picamera2_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)
    with pytest.raises(CameraUnavailable, match="picamera2"):
        make_backend(CameraConfig(backend="picamera2")).open()


class FakeVideoSource:
    def __init__(self, uri, options):
        self.uri, self.options, self.queue, self.streaming, self.closed = uri, options, [], True, False

    def Capture(self, format, timeout):  # noqa: N802, A002 (vendor API)
        assert format == "rgb8"
        self.timeout = timeout
        return self.queue.pop(0) if self.queue else None

    def IsStreaming(self):  # noqa: N802
        return self.streaming

    def Close(self):  # noqa: N802
        self.closed = True


@pytest.fixture
def jetson_utils(monkeypatch):
    mod = types.ModuleType("jetson_utils")
    mod.sources = []

    def videoSource(uri, options):  # noqa: N802
        src = FakeVideoSource(uri, options)
        mod.sources.append(src)
        return src

    mod.videoSource = videoSource
    mod.cudaToNumpy = lambda img: img
    mod.cudaDeviceSynchronize = lambda: None
    monkeypatch.setitem(sys.modules, "jetson_utils", mod)
    return mod


def test_jetson_videosource_frames_are_bgr(jetson_utils):
    cam = make_backend(CameraConfig(backend="jetson", source="csi://0", fps=30))
    cam.open()
    src = jetson_utils.sources[0]
    assert src.options == {"width": 1280, "height": 720, "framerate": 30.0}
    rgb = np.zeros((720, 1280, 3), np.uint8)
    rgb[..., 0] = 200  # red
    src.queue.append(rgb)
    f = cam.read(0.5)
    assert src.timeout == 500 and f.image[0, 0].tolist() == [0, 0, 200]
    assert cam.read(0.5) is None  # timeout while streaming
    src.streaming = False
    with pytest.raises(CameraError, match="stream stopped"):
        cam.read(0.5)
    cam.close()
    assert src.closed


def test_missing_jetson_utils_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "jetson_utils", None)
    with pytest.raises(CameraUnavailable, match="jetson-utils"):
        make_backend(CameraConfig(backend="jetson")).open()
