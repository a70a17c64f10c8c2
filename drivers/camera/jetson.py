"""NVIDIA Jetson capture through jetson-utils `videoSource` (csi://, v4l2://, rtsp://, file://)."""

from __future__ import annotations

from typing import Any

from drivers.camera.base import Camera, CameraError, CameraUnavailable, EndOfStream, Frame, IlluminatorState, check_image


class JetsonCamera(Camera):
    name = "jetson"

    def __init__(self, cfg: Any, illuminator_state: IlluminatorState | None = None) -> None:
        super().__init__(illuminator_state)
        self.cfg = cfg
        self.uri = cfg.source or "csi://0"
        self._src: Any = None
        self._ju: Any = None

    def open(self) -> None:
        try:
            import jetson_utils
        except ImportError as exc:
            raise CameraUnavailable(
                f"camera backend 'jetson' needs jetson-utils (built from dusty-nv/jetson-utils, module jetson_utils) ({exc})"
            ) from None
        self._ju = jetson_utils
        options = {"width": self.cfg.width, "height": self.cfg.height, "framerate": float(self.cfg.fps)}
        try:
            self._src = jetson_utils.videoSource(self.uri, options=options)
        except Exception as exc:  # jetson_utils raises plain Exception on open failure
            raise CameraUnavailable(f"{self.uri}: videoSource failed: {exc}") from None
        self.live = not self.uri.startswith("file://")

    def read(self, timeout_s: float = 1.0) -> Frame | None:
        if self._src is None:
            raise CameraError(f"{self.uri}: not open")
        try:
            img = self._src.Capture(format="rgb8", timeout=int(timeout_s * 1000))
        except Exception as exc:
            raise CameraError(f"{self.uri}: capture failed: {exc}") from None
        if img is None:
            if not self._src.IsStreaming():
                if not self.live:
                    raise EndOfStream(f"{self.uri}: end of file")
                raise CameraError(f"{self.uri}: stream stopped")
            return None
        self._ju.cudaDeviceSynchronize()
        rgb = self._ju.cudaToNumpy(img)
        image = check_image(rgb[..., ::-1].copy(), self.uri)  # RGB -> BGR, own the memory
        return self._frame(image)

    def close(self) -> None:
        if self._src is not None:
            self._src.Close()
            self._src = None

    def info(self) -> dict[str, Any]:
        return {**super().info(), "source": self.uri}
