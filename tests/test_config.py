from pathlib import Path

import pytest

from dispatch.core.config import DEFAULT_CONFIG_PATH, load_config
from dispatch.core.domain import DEPARTMENTS, DeadlineKind, Priority
from protocols.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "x.toml"
    p.write_text(text, encoding="utf-8")
    return p


def default_text() -> str:
    return DEFAULT_CONFIG_PATH.read_text(encoding="utf-8")


def test_default_config_is_valid() -> None:
    cfg = load_config()
    assert set(cfg.departments) == set(DEPARTMENTS)
    assert cfg.departments["fire"].zh == "消防"
    assert cfg.route("parking") == ["police", "transport"]


def test_deadline_lookup_prefers_category_then_department(tmp_path: Path) -> None:
    text = default_text() + "\n[sla.department.fire.urgent]\nack = 60\n[sla.category.noise.urgent]\nack = 30\n"
    cfg = load_config(write(tmp_path, text))
    assert cfg.within(DeadlineKind.ACK, Priority.URGENT, "fire", "fire_hazard").total_seconds() == 60
    assert cfg.within(DeadlineKind.ACK, Priority.URGENT, "fire", "noise").total_seconds() == 30
    assert cfg.within(DeadlineKind.ACK, Priority.URGENT, "police", "parking").total_seconds() == 120


@pytest.mark.parametrize(("change", "expected"), [
    (("ack = 120", "ack = -1"), "sla.within.urgent.ack: Input should be greater than 0"),
    (("sweep_s = 30.0", "sweep_s = 30.0\nsweeep = 1"), "sla.sweeep: unknown key"),
    (("route = [\"market\"]", "route = [\"markets\"]"), "categories.food_safety.route: unknown department 'markets'"),
    (("satisfaction_rate = 0.35", "satisfaction_rate = 0.45"),
     "evaluation.presets.three_rates: weights must add up to 1.0, they add up to 1.1"),
    (("preset = \"three_rates\"", "preset = \"fastest\""), "evaluation: preset: 'fastest' is not one of the presets"),
    (("result_rate = 0.30", "result_rate = 0.30\nspeed = 0.1"), "evaluation.presets.timeliness.speed: unknown key"),
    (("[departments.fire]\nzh = \"消防\"\nen = \"Fire and rescue\"\n", ""), "departments: must be exactly"),
    (("ack = 120", "ack = \"soon\""), "sla.within.urgent.ack: Input should be a valid number"),
    (("gc_thresholds = [50000, 20, 10]", "gc_thresholds = [0, 20, 10]"),
     "server.gc_thresholds.0: Input should be greater than or equal to 700"),
    (("gc_thresholds = [50000, 20, 10]", "gc_thresholds = [50000, 20]"), "server.gc_thresholds.2: Field required"),
    (("gc_thresholds = [50000, 20, 10]", "gc_thresholds = [50000, 20, 5000]"),
     "server.gc_thresholds.2: Input should be less than or equal to 1000"),
])
def test_bad_file_names_the_key(tmp_path: Path, change: tuple[str, str], expected: str) -> None:
    text = default_text()
    assert change[0] in text
    path = write(tmp_path, text.replace(change[0], change[1], 1))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in info.value.message
    assert expected in info.value.message


def test_not_toml_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[server\n"))


def test_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.toml")


def test_every_key_is_documented() -> None:
    doc = (Path(__file__).parent.parent / "docs" / "CONFIGURATION.md").read_text(encoding="utf-8")
    cfg = load_config()
    for section in ("server", "realtime", "sla", "evaluation", "notify", "lifecycle", "metrics", "attachments",
                    "privacy"):
        for key in type(getattr(cfg, section)).model_fields:
            assert f"`{section}.{key}`" in doc, f"{section}.{key} is not documented in docs/CONFIGURATION.md"
