"""Shared test fixtures: fake terminals and pipes (the injected Environment), an isolated sq
home, the real `sq` executable for subprocess pipelines, and the local venue fakes
(`binance_fake`, `binance_archive`, `kite_fake`, `kite_env`, `kite_open_hours`). Plain helpers live in
`tests.support`."""

from __future__ import annotations

import os

import pytest

from tests.support.process import SQ_BIN, SqRunner

# the venue fakes' fixtures, for every test module
pytest_plugins = ["tests.support.fakes.binance", "tests.support.fakes.binance_archive", "tests.support.fakes.kite"]


@pytest.fixture
def sq() -> SqRunner:
    return SqRunner()


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    """Every test gets its own SQ_HOME (config, state, cache) and no ambient sq settings."""
    home = tmp_path_factory.mktemp("sqhome")
    monkeypatch.setenv("SQ_HOME", str(home))
    for var in list(os.environ):
        if var.startswith(("ZKITE_", "BINANCE_", "SQ_BINANCE", "SQ_KITE")) or var in ("SQ_CONFIG", "SQ_CONFIRM_LIVE", "SQ_DEBUG"):
            monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture
def sq_bin() -> str:
    return SQ_BIN
