"""Camera settings validate every field and name the field, the value and what is accepted."""

from __future__ import annotations

from typing import Any

import pytest

from daemon.cameras.settings import (
    DeviceSelector,
    GenicamCameraSettings,
    SimulatedCameraSettings,
    SimulatedFaults,
)
from daemon.errors import ConfigError


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pattern": "checker"}, "pattern must be one of radial_sine, random, empty. Got 'checker' instead."),
        ({"height": 0}, "height must be >= 1. Got 0 instead."),
        ({"width": 2.5}, "width must be an integer. Got 2.5 instead."),
        ({"dtype": "float32"}, "dtype must be one of uint8, uint16. Got 'float32' instead."),
        ({"dtype": "uint8", "bits": 12}, "bits must be between 1 and 8 for uint8. Got 12 instead."),
        ({"frame_period_s": -1}, "frame_period_s must be >= 0. Got -1 instead."),
        ({"trigger": "hardware"}, "trigger must be one of free, software. Got 'hardware' instead."),
        ({"timeout_s": 0}, "timeout_s must be > 0. Got 0 instead."),
        ({"seed": True}, "seed must be an integer. Got True instead."),
        ({"phase_cache_mib": -1}, "phase_cache_mib must be >= 0. Got -1 instead."),
        ({"phase_cache_mib": 65537}, "phase_cache_mib must be between 0 and 65536. Got 65537 instead."),
    ],
)
def test_simulated_settings_refuse_bad_values(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        SimulatedCameraSettings(**kwargs)
    assert str(info.value) == message


def test_simulated_faults_are_validated() -> None:
    with pytest.raises(ConfigError, match=r"faults.incomplete_every must be >= 1. Got 0 instead."):
        SimulatedFaults(incomplete_every=0)
    with pytest.raises(ConfigError, match=r"faults.drop_every must be >= 2"):
        SimulatedFaults(drop_every=1)


def test_simulated_settings_are_frozen_values() -> None:
    settings = SimulatedCameraSettings(bits=12)
    assert settings.depth == 12
    assert SimulatedCameraSettings().depth == 16
    with pytest.raises(AttributeError):
        settings.height = 3  # type: ignore[misc]


def test_genicam_settings_default_to_leaving_the_device_alone() -> None:
    settings = GenicamCameraSettings()
    assert settings.width is None
    assert settings.pixel_format is None
    assert dict(settings.nodes) == {}
    assert settings.producers == ()


def test_genicam_settings_normalise_what_yaml_gives() -> None:
    settings = GenicamCameraSettings(producers="/opt/x.cti", trigger_mode=True, nodes={"BlackLevel": 3})  # type: ignore[arg-type]
    assert settings.producers == ("/opt/x.cti",)
    assert settings.trigger_mode == "On"
    assert GenicamCameraSettings(trigger_mode="off").trigger_mode == "Off"
    assert dict(settings.nodes) == {"BlackLevel": 3}
    with pytest.raises(TypeError):
        settings.nodes["BlackLevel"] = 4  # type: ignore[index]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"width": 0}, "width must be >= 1. Got 0 instead."),
        ({"offset_x": -2}, "offset_x must be >= 0. Got -2 instead."),
        ({"exposure_time_us": 0}, "exposure_time_us must be > 0. Got 0 instead."),
        ({"frame_rate_hz": float("nan")}, "frame_rate_hz must be a finite number. Got nan instead."),
        ({"gain": "high"}, "gain must be a finite number. Got 'high' instead."),
        ({"trigger_mode": "maybe"}, "trigger_mode must be On or Off. Got 'maybe' instead."),
        ({"pixel_format": ""}, "pixel_format must be a non-empty string. Got '' instead."),
        ({"on_lost": "retry"}, "on_lost must be one of fail, reconnect. Got 'retry' instead."),
        ({"reconnect_attempts": 0}, "reconnect_attempts must be >= 1. Got 0 instead."),
        ({"nodes": {"Gamma": [1, 2]}}, "nodes['Gamma'] must be a bool, number or string. Got [1, 2] instead."),
        ({"nodes": ["Gamma"]}, "nodes must be a mapping of feature name to value. Got ['Gamma'] instead."),
        ({"producers": 3}, "producers must be a list of .cti paths or folders. Got 3 instead."),
    ],
)
def test_genicam_settings_refuse_bad_values(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        GenicamCameraSettings(**kwargs)
    assert str(info.value) == message


def test_device_selector_validates_and_describes() -> None:
    assert DeviceSelector().describe() == "no criteria"
    assert DeviceSelector(serial_number="A1", index=1).describe() == "serial_number='A1', index=1"
    with pytest.raises(ConfigError, match=r"select.index must be >= 0. Got -1 instead."):
        DeviceSelector(index=-1)
