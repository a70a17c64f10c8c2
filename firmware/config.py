"""One typed configuration tree for the appliance, loaded from one TOML file.

Every section is a pydantic model that refuses unknown keys, so a typo in
`/etc/polewatch/polewatch.toml` stops the service at start with an error that
names the key, the value and what was expected, instead of being ignored.
Each subsystem owns its section class here; code reads `Config` only.
"""

from __future__ import annotations

import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DEFAULT_PATH = Path("/etc/polewatch/polewatch.toml")


class ConfigError(Exception):
    """A configuration file that cannot be used; the message names each problem."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DeviceConfig(Section):
    """Who this pole is on the department's network."""

    id: str = Field("pole-sim-001", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    agency: str = Field("demo-pd", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    data_dir: Path = Path("/var/lib/polewatch")


class SiteConfig(Section):
    """Fixed location of the pole: part of every sealed read."""

    name: str = "Simulated road"
    description: str = "Embedded default: simulated camera, no real site"
    latitude: float = Field(37.7749, ge=-90, le=90)
    longitude: float = Field(-122.4194, ge=-180, le=180)
    heading_deg: float = Field(0.0, ge=0, lt=360)


class SimulatedRoadConfig(Section):
    """The simulated road: vehicles with synthetic plates, for the demo, tests and benchmarks."""

    vehicles_per_minute: float = Field(20.0, gt=0, le=600)
    speed_mph: float = Field(30.0, gt=0, le=150)
    speed_jitter: float = Field(0.15, ge=0, lt=1)
    angle_deg: float = Field(0.0, ge=-45, le=45)
    receding_fraction: float = Field(0.3, ge=0, le=1)
    night: bool = False
    noise: float = Field(2.0, ge=0, le=30)
    # share of plates drawn in plate-die lookalike fonts (FHWA highway series, DIN, routed letters);
    # 0 keeps the road's plates those of every earlier benchmark
    die_fonts: float = Field(0.0, ge=0, le=1)
    # share of plates holding an I that draw it with slab serifs, as US dies do (none of us-crops-dev's 22
    # real Is is a bare bar); 1 redraws only the Is of the same vehicles, 0 draws the fonts' bare-bar I of the
    # benchmarks before session 34
    die_i: float = Field(1.0, ge=0, le=1)
    seed: int = 1
    realtime: bool = True


class CameraConfig(Section):
    """Which camera backend, and how it exposes: the shutter freezes motion at the speed limit."""

    backend: Literal["simulated", "picamera2", "jetson", "opencv", "replay"] = "simulated"
    source: str = ""
    width: int = Field(1280, ge=160, le=4096)
    height: int = Field(720, ge=120, le=3072)
    fps: float = Field(30.0, gt=0, le=240)
    speed_limit_mph: float = Field(35.0, gt=0, le=150)
    max_analogue_gain: float = Field(8.0, ge=1, le=64)
    target_brightness: float = Field(110.0, gt=0, lt=255)
    sensor_crop: tuple[int, int, int, int] | None = None
    replay_realtime: bool = True
    replay_loop: bool = False
    reconnect_initial_s: float = Field(1.0, gt=0)
    reconnect_max_s: float = Field(30.0, gt=0)
    stall_timeout_s: float = Field(5.0, gt=0)
    simulated: SimulatedRoadConfig = SimulatedRoadConfig()


class GpioConfig(Section):
    """GPIO backend; the fake keeps its pin states in `state_file` so a stop hook's effect shows."""

    backend: Literal["fake", "rpi", "jetson"] = "fake"
    numbering: Literal["BCM", "BOARD"] = "BCM"
    state_file: Path | None = None


class IlluminatorConfig(Section):
    """Infrared LEDs and IR-cut filter; day/night switching and the LEDs' safety limits."""

    enabled: bool = True
    led_pin: int | None = 18
    pwm: bool = True
    pwm_frequency_hz: float = Field(1000.0, gt=0)
    level: float = Field(1.0, ge=0, le=1)
    ircut_pin: int | None = 23
    ircut_day_level: bool = True
    ambient_pin: int | None = None
    ambient_day_level: bool = True
    mode: Literal["auto", "day", "night", "sun"] = "auto"
    night_brightness: float = Field(50.0, ge=0, le=255)
    day_brightness: float = Field(90.0, ge=0, le=255)
    night_gain: float = Field(6.0, ge=1)
    sun_night_elevation_deg: float = Field(-0.833, ge=-18, le=10)
    min_dwell_s: float = Field(60.0, ge=0)
    max_duty_cycle: float = Field(0.8, gt=0, le=1)
    max_temperature_c: float = Field(75.0, gt=0)
    temperature_hysteresis_c: float = Field(5.0, ge=0)
    stall_off_s: float = Field(5.0, gt=0)


class TensorRTConfig(Section):
    precision: Literal["fp16", "fp32", "int8"] = "fp16"
    engine_cache: Path = Path("/var/lib/polewatch/engines")
    calibration_dir: Path | None = None
    fallback_to_onnxruntime: bool = True
    workspace_mb: int = Field(1024, ge=64)


class RecognitionConfig(Section):
    runtime: Literal["onnxruntime", "tensorrt"] = "onnxruntime"
    models_dir: Path | None = None
    threads: int = Field(0, ge=0, le=64)
    detector_threshold: float | None = Field(None, gt=0, lt=1, description="default: the manifest's threshold")
    min_read_confidence: float | None = Field(
        None, ge=0, le=1,
        description="a detection read less surely than this is not a plate; default: the OCR manifest's "
                    "min_read_confidence (measured per model, as it leans on the model's calibration: "
                    "docs/recognition.md), else 0")
    verify_threshold: float | None = Field(
        0.30, gt=0, lt=1,
        description="detections scoring between this and detector_threshold are kept only when the OCR reads "
                    "them as a plate (verify_min_confidence, verify_min_chars); at or above detector_threshold: no band")
    verify_min_confidence: float = Field(0.4, ge=0, le=1)
    verify_min_chars: int = Field(3, ge=1, le=8)
    verify_format_confidence: float | None = Field(
        0.3, ge=0, le=1,
        description="with us_format_rules, a weak detection whose read has 5 or more characters in a common US "
                    "serial format is kept from this confidence (small, blurred plates read right but unsure); "
                    "none: no such rule")
    verify_char_confidence: float | None = Field(
        0.9, ge=0, le=1,
        description="a weak detection whose read has 5 to 8 characters, at least one a digit, each seen with this "
                    "mean probability or more is kept whatever the whole text's confidence (words on signs and "
                    "grilles rarely qualify); none: no such rule")
    crop_search_below: float | None = Field(
        0.7, ge=0, le=1,
        description="an image given as one plate crop (recognize --crop, eval of crop sets) whose whole read is "
                    "under this confidence is also searched with the detector: a loosely cut crop reads far better "
                    "from the plate found inside it; none: off")
    close_ups: bool | None = Field(
        None,
        description="also search each image shrunk to half its fit, for plates filling a third or more of it "
                    "(close-up photos), and to 0.3 of it, for a plate filling the image (a crop given as a photo; "
                    "two more detector passes per image); none: on for still images "
                    "(polewatch recognize, eval), off for the camera's frames, whose plates the pole's framing keeps small")
    roll_look: bool | None = Field(
        None,
        description="rolled plates (a hand-held photo): the image turned 15 degrees either way is searched for "
                    "plates the upright passes missed (two more detector passes), and plates read under 0.8 are read "
                    "again turned back 10 and 16 degrees either way, a much surer turned read (by 0.35, and 0.85 or "
                    "more) replacing the read; none: on for still images (polewatch recognize, eval), off for the "
                    "camera's frames, which a level pole keeps level")
    nms_iou: float = Field(0.45, gt=0, lt=1)
    max_plates: int = Field(16, ge=1, le=256)
    top_n: int = Field(5, ge=1, le=50)
    us_format_rules: bool = True
    second_look_below: float | None = Field(
        0.95, gt=0, le=1,
        description="plates read with a confidence under this are read again, zoomed in and padded out, and the "
                    "three readings pooled (about a third of real plates; none: never)")
    glyph_check: bool = Field(
        True, description="where the OCR holds O as a candidate for a glyph it read as 0, measure the glyph: one "
                          "wider than the plate's digits is read O (firmware/recognition/glyphs.py)")
    rectify: bool = False
    crop_margin: float = Field(-0.03, ge=-0.2, le=0.5, description="fraction of the box width added on each side of a plate crop (twice that of its height)")
    tensorrt: TensorRTConfig = TensorRTConfig()


class PipelineConfig(Section):
    """Frame queue, motion/ROI gate and the tracker's rules for one read per vehicle pass."""

    queue_size: int = Field(8, ge=1, le=1024)
    motion_gate: bool = True
    motion_threshold: float = Field(0.002, ge=0, le=1)
    motion_pixel_delta: int = Field(18, ge=1, le=255)
    motion_hold_frames: int = Field(3, ge=0)
    roi: tuple[int, int, int, int] | None = None
    min_confidence: float = Field(0.2, ge=0, le=1)
    min_frames: int = Field(2, ge=1)
    max_gap_s: float = Field(1.0, gt=0)
    max_track_s: float = Field(30.0, gt=0)
    repeat_window_s: float = Field(
        10.0, ge=0,
        description="a pass whose voted text and direction equal a read made less than this long before it is "
                    "that vehicle again (its plate hidden a moment by the vehicle ahead): no second read (0: off)")
    match_distance: float = Field(1.5, gt=0)
    edge_margin_px: int = Field(
        1, ge=-1, le=64,
        description="plates whose box comes this close to the frame's edge are cut by it and not voted on "
                    "(-1: vote on every plate)")
    fuse_frames: int = Field(
        8, ge=0, le=32,
        description="a pass whose vote is split between O and 0 has the plate in this many of its nearest frames "
                    "aligned and averaged, and the glyphs measured once on that (recognition.fusion; 0: off)")
    jpeg_quality: int = Field(85, ge=30, le=100)


class StoreConfig(Section):
    """The sealed outbox (firmware.store); see docs/store-and-uplink.md."""

    path: Path | None = None  # default <device.data_dir>/outbox.db
    capacity_bytes: int = Field(2 * 1024**3, ge=1024 * 1024)
    delivered_grace_hours: float = Field(24.0, ge=0)
    undelivered_max_age_days: float = Field(30.0, gt=0)
    jpeg_quality: int = Field(85, ge=30, le=100)
    integrity_check: bool = True  # PRAGMA quick_check at start; corrupt files are moved aside
    maintain_interval_s: float = Field(300.0, gt=0)
    # evict (same order as capacity) before the file system's free space drops below this,
    # so the disk never fills and acks can still be recorded
    min_free_bytes: int = Field(64 * 1024 * 1024, ge=0)


class KeysConfig(Section):
    """Where the device's keys live (firmware.keys); default <device.data_dir>/keys."""

    dir: Path | None = None


class UplinkConfig(Section):
    enabled: bool = False
    host: str = "localhost"
    port: int = Field(8883, ge=1, le=65535)
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    protocol: Literal["mqtt5", "mqtt311"] = "mqtt5"
    ack_mode: Literal["department", "puback"] = "department"
    inflight_window: int = Field(64, ge=1, le=10000)
    telemetry_interval_s: float = Field(60.0, gt=0)
    reconnect_min_s: float = Field(1.0, gt=0)
    reconnect_max_s: float = Field(120.0, gt=0)
    bandwidth_bytes_per_s: int | None = Field(None, ge=1024)
    max_message_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    ack_timeout_s: float = Field(60.0, gt=0)  # resend a part not acknowledged by then
    keepalive_s: int = Field(30, ge=5, le=3600)
    connect_timeout_s: float = Field(10.0, gt=0)
    session_expiry_s: int = Field(7 * 86400, ge=0)
    # after an automatic fall-back to 3.1.1, try MQTT 5 again this long after (a broker that
    # was only slow or restarting while the pole connected gets MQTT 5 back)
    mqtt5_retry_s: float = Field(3600.0, gt=0)


class HotlistConfig(Section):
    """Hot-list matching (docs/policy.md). Lists live encrypted in <device.data_dir>/hotlists;
    the department's list-signing keys in <keys dir>/hotlist/*.pub."""

    # edits allowed on confusion-folded text for plates of 5+ characters
    max_edit_distance: int = Field(1, ge=0, le=2)
    # edits allowed on top of wildcards for partial plates (0: look-alikes only)
    partial_edit_distance: int = Field(0, ge=0, le=1)
    # groups of characters the OCR confuses; each group compares equal
    confusions: list[str] = ["O0DQ", "I1L", "B8", "S5", "Z2", "G6"]
    top_n: int = Field(5, ge=1, le=20)  # OCR candidates checked per read
    alert_relay_pin: int | None = None
    relay_hold_s: float = Field(5.0, gt=0, le=3600)
    # a frame's plate this sure is checked at once (early alert), before the pass ends
    early_alert_confidence: float = Field(0.8, gt=0, le=1)
    realert_s: float = Field(60.0, ge=0)  # one alert per entry per pass, not one per frame

    @field_validator("confusions")
    @classmethod
    def _groups(cls, v: list[str]) -> list[str]:
        seen: set[str] = set()
        for g in v:
            if len(g) < 2 or not g.isalnum() or not g.isascii() or g != g.upper():
                raise ValueError(f"confusion group {g!r} must be 2+ upper-case letters or digits")
            if seen & set(g):
                raise ValueError(f"character(s) {sorted(seen & set(g))} appear in two confusion groups")
            seen |= set(g)
        return v


class EventConfig(Section):
    """A special-event deployment window; absent for a fixed pole. Outside
    [start, end) the device does not read; after `end` the event's data is
    purged once delivered and the purge is reported (firmware.event)."""

    name: str
    start: datetime
    end: datetime
    location: str
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    hotlist: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # event list name
    alert_routes: list[Literal["department", "relay"]] = ["department"]
    relay_pin: int | None = Field(None, ge=0, le=255)

    @field_validator("start", "end")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("needs a time zone offset, e.g. 2026-12-05T16:00:00-08:00")
        return v

    @model_validator(mode="after")
    def _order(self) -> EventConfig:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        if "relay" in self.alert_routes and self.relay_pin is None:
            raise ValueError("alert_routes has 'relay' but relay_pin is not set")
        return self


class AccessConfig(Section):
    """Local accounts (firmware.access): lockout and password hashing."""

    max_failures: int = Field(5, ge=1, le=100)
    lockout_minutes: float = Field(15.0, gt=0)
    session_minutes: float = Field(30.0, gt=0, le=24 * 60)
    argon2_time_cost: int = Field(3, ge=1, le=20)
    argon2_memory_kib: int = Field(65536, ge=8, le=1024 * 1024)
    argon2_parallelism: int = Field(1, ge=1, le=16)


class OtaConfig(Section):
    """Signed updates (docs/ota.md). The TUF trust state lives in <device.data_dir>/tuf."""

    enabled: bool = False
    # base URL of the release repository; metadata/ and targets/ lie under it
    repository_url: str = ""
    # root.json shipped in the OS image: the first trust anchor (used when data_dir holds none)
    trusted_root: Path = Path("/etc/polewatch/ota-root.json")
    ca_file: Path | None = None
    check_interval_s: float = Field(3600.0, gt=0)
    check_jitter_s: float = Field(300.0, ge=0)
    # new release must pass its health gate within this time, else it is rolled back
    health_timeout_s: float = Field(90.0, gt=0)
    health_require: list[Literal["frames", "recognizer", "broker"]] = ["frames", "recognizer", "broker"]
    health_file: Path | None = None  # default <device.data_dir>/health.json
    releases_dir: Path = Path("/opt/polewatch")
    hardware: str = Field("auto", pattern=r"^[A-Za-z0-9_.-]+$")
    python: Path | None = None  # interpreter the slot launcher uses; default: the updater's own
    service_unit: str = "polewatch.service"
    # inline: this process installs (polewatch-ota*.service, root). service: this process is the
    # application and asks the install service through a request file. auto: service inside service_unit.
    activation: Literal["auto", "inline", "service"] = "auto"
    follow_timeout_s: float = Field(900.0, gt=0)
    download_timeout_s: float = Field(30.0, gt=0)
    download_retries: int = Field(3, ge=0, le=100)
    max_attempts: int = Field(2, ge=1, le=10)


class HealthConfig(Section):
    """systemd watchdog and the window the health figures cover."""

    watchdog: bool = True
    latency_window: int = Field(1000, ge=10)
    log_interval_s: float = Field(60.0, gt=0)


class LoggingConfig(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["json", "text"] = "json"
    modules: dict[str, Literal["DEBUG", "INFO", "WARNING", "ERROR"]] = {}


class Config(Section):
    device: DeviceConfig = DeviceConfig()
    site: SiteConfig = SiteConfig()
    camera: CameraConfig = CameraConfig()
    gpio: GpioConfig = GpioConfig()
    illuminator: IlluminatorConfig = IlluminatorConfig()
    recognition: RecognitionConfig = RecognitionConfig()
    pipeline: PipelineConfig = PipelineConfig()
    store: StoreConfig = StoreConfig()
    keys: KeysConfig = KeysConfig()
    uplink: UplinkConfig = UplinkConfig()
    hotlist: HotlistConfig = HotlistConfig()
    event: EventConfig | None = None
    access: AccessConfig = AccessConfig()
    ota: OtaConfig = OtaConfig()
    health: HealthConfig = HealthConfig()
    logging: LoggingConfig = LoggingConfig()

    @field_validator("event", mode="before")
    @classmethod
    def _empty_event(cls, v: Any) -> Any:
        return None if v == {} else v


def _describe(err: dict[str, Any]) -> str:
    key = ".".join(str(p) for p in err["loc"]) or "(top level)"
    if err["type"] == "extra_forbidden":
        return f"{key}: unknown key (value {err['input']!r}); check the spelling against docs/configuration.md"
    return f"{key}: value {err.get('input')!r} is invalid: {err['msg']}"


def parse(data: dict[str, Any], source: str = "<config>") -> Config:
    """Validate a configuration mapping; raise ConfigError naming every bad key."""
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        lines = [_describe(e) for e in exc.errors()]
        raise ConfigError(f"{source}: invalid configuration:\n  " + "\n  ".join(lines)) from None


def load(path: Path | str | None = None) -> Config:
    """Load the TOML file at `path` (default /etc/polewatch/polewatch.toml).

    A missing default file means the embedded default (simulated camera and
    GPIO, local store); a missing explicit file is an error.
    """
    if path is None:
        if not DEFAULT_PATH.exists():
            return embedded_default()
        path = DEFAULT_PATH
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read configuration: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    return parse(data, str(p))


def embedded_default() -> Config:
    """Simulated camera and GPIO, store under ./var when /var/lib is not writable."""
    cfg = Config()
    data_dir = cfg.device.data_dir
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        probe = data_dir / ".w"
        probe.touch()
        probe.unlink()
    except OSError:
        data_dir = Path.cwd() / "var" / "polewatch"
    cfg.device.data_dir = data_dir
    cfg.recognition.tensorrt.engine_cache = data_dir / "engines"
    return cfg
