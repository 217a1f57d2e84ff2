"""backend/hub.py: one reading of the Hub's offline switches, used by every layer."""

from __future__ import annotations

import socket

import pytest

from backend import hub
from backend.settings import Settings


@pytest.mark.parametrize("value", ["1", "true", "TRUE", "yes", "Yes", "on", "ON", " 1 ", "on\n"])
def test_switched_on_values(value: str) -> None:
    assert hub.hub_offline({"HF_HUB_OFFLINE": value}) is True


@pytest.mark.parametrize("value", ["", "0", "false", "no", "off", "2", "offline", "y"])
def test_switched_off_values(value: str) -> None:
    assert hub.hub_offline({"HF_HUB_OFFLINE": value}) is False


def test_unset_is_online() -> None:
    assert hub.hub_offline({}) is False


def test_every_reader_agrees_on_on(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    """``=on`` was offline for the engines and the importers but online for Settings and the
    stages; now all of them read it through one function."""
    from backend.training import models

    monkeypatch.setenv("HF_HUB_OFFLINE", "on")
    assert hub.hub_offline() is True
    assert Settings().hub_offline() is True
    assert models.hub_offline is hub.hub_offline


def test_offline_switch_names_the_variable() -> None:
    assert hub.offline_switch({"HF_DATASETS_OFFLINE": "yes"}) == "HF_DATASETS_OFFLINE"
    assert hub.offline_switch({"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}) \
        == "HF_HUB_OFFLINE"
    assert hub.offline_switch({"HF_HUB_OFFLINE": "off"}) is None


def test_a_malformed_id_is_not_cached() -> None:
    assert hub.in_hub_cache("not a valid//id") is False


def test_probe_says_no_for_a_closed_port() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert hub.hub_reachable(1.0, {"HF_ENDPOINT": f"http://127.0.0.1:{port}"}) is False
