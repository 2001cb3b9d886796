"""The governance gate of ``cdb run --live`` against the real in-process MEXC simulator.

Async tests run on anyio's pytest plugin with asyncio; the systemcheck rows the gate runs use
their own event loop in a worker thread, so the simulator keeps serving from the test's loop.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path

import pytest

from cdb_cli.adapters.mexc.sim import SimConfig, SimExchange, SimServer
from cdb_cli.engine.errors import CheckFailed, ConfigurationError
from cdb_cli.errors import ExitCode, exit_code_for
from cdb_cli.services.governance import GateResult, gate_audit, live_gate
from cdb_cli.settings import Settings
from cdb_cli.settings_io import load_settings

pytestmark = pytest.mark.anyio

API_KEY = "mx0vglGateKey0001"
SECRET = "0123456789abcdef0123456789abcdef"
MASKED = "mx0v…001"
RESTORED = (True, "3 fills, 0 open orders, balances match")
ENV_EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"
SYMBOLS = ["BTCUSDT"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _config() -> SimConfig:
    return SimConfig(
        symbols=("BTCUSDT", "ETHUSDT"),
        accounts={API_KEY: SECRET},
        balances={"USDT": Decimal(10_000)},
        seed=7,
        history_minutes=120,
        tick_interval=None,
    )


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    async with SimServer(SimExchange(_config())) as server:
        yield server


@pytest.fixture
def live_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[SimServer], Settings]:
    """Everything a live start needs, pointed at ``sim``: a migrated store, keys, explicit risk
    limits and metrics port. Tests then remove or spoil one thing."""
    from cdb_cli.adapters.sql import upgrade

    url = f"sqlite:///{tmp_path / 'cdb.db'}"
    upgrade(url)

    def configure(sim: SimServer) -> Settings:
        for name, value in {
            "CDB_DATABASE_URL": url,
            "CDB_BACKUP_DIR": str(tmp_path / "backups"),
            "CDB_MEXC_REST_URL": sim.rest_url,
            "CDB_MEXC_WS_URL": sim.ws_url,
            "CDB_SYMBOLS": "BTCUSDT",
            "CDB_MEXC_API_KEY": API_KEY,
            "CDB_MEXC_API_SECRET": SECRET,
            "CDB_DAILY_DRAWDOWN_PCT": "3",
            "CDB_CIRCUIT_BREAKER_PCT": "8",
            "CDB_MAX_EXPOSURE_PCT": "20",
            "CDB_MAX_POSITION_QUOTE": "500",
            "CDB_HTTP_PORT": "9123",
        }.items():
            monkeypatch.setenv(name, value)
        return load_settings()

    return configure


def _condition(result: GateResult, name: str) -> tuple[bool, str]:
    found = {c.name: (c.ok, c.detail) for c in result.conditions}
    return found[name]


async def test_all_good_with_confirm_live_passes(
    sim: SimServer, live_env: Callable[[SimServer], Settings]
) -> None:
    result = await live_gate(
        live_env(sim),
        symbols=SYMBOLS,
        confirm_live=True,
        prompt=None,
        portfolio_restored=RESTORED,
    )
    assert result.ok, result.rows()
    assert result.error() is None
    result.raise_if_refused()
    assert [name for name, _, _ in result.rows()] == [
        "mexc keys",
        "systemcheck",
        "risk limits",
        "metrics endpoint",
        "portfolio restored",
        "operator confirmed",
    ]
    assert result.api_key_masked == MASKED
    assert _condition(result, "mexc keys") == (True, f"{MASKED} accepted by MEXC")
    assert _condition(result, "metrics endpoint") == (True, "/metrics on port 9123")
    assert _condition(result, "operator confirmed") == (True, "--confirm-live")
    assert _condition(result, "portfolio restored") == RESTORED

    record = gate_audit(result, ts_ns=time.time_ns(), actor="ops@host", run_id="l123")
    assert record.action == "live_start"
    assert record.detail["api_key"] == MASKED
    assert record.detail["mexc keys"] == f"ok: {MASKED} accepted by MEXC"
    assert SECRET not in str(record.model_dump())


async def test_no_keys_is_a_configuration_refusal(
    sim: SimServer, live_env: Callable[[SimServer], Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    live_env(sim)
    monkeypatch.delenv("CDB_MEXC_API_KEY")
    monkeypatch.delenv("CDB_MEXC_API_SECRET")
    result = await live_gate(
        load_settings(),
        symbols=SYMBOLS,
        confirm_live=True,
        prompt=None,
        portfolio_restored=RESTORED,
    )
    assert not result.ok
    ok, detail = _condition(result, "mexc keys")
    assert not ok
    assert detail == (
        "CDB_MEXC_API_KEY: required in live mode; CDB_MEXC_API_SECRET: required in live mode"
    )
    error = result.error()
    assert isinstance(error, ConfigurationError)
    assert exit_code_for(error) == ExitCode.CONFIGURATION
    assert error.message == f"cdb run --live refused: mexc keys: {detail}"
    with pytest.raises(ConfigurationError):
        result.raise_if_refused()
    assert gate_audit(result, ts_ns=1, actor="ops@host").action == "live_refused"


async def test_a_malformed_key_is_a_configuration_refusal(
    sim: SimServer, live_env: Callable[[SimServer], Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    live_env(sim)
    monkeypatch.setenv("CDB_MEXC_API_SECRET", "not-a-secret")
    result = await live_gate(
        load_settings(),
        symbols=SYMBOLS,
        confirm_live=True,
        prompt=None,
        portfolio_restored=RESTORED,
    )
    assert _condition(result, "mexc keys") == (
        False,
        "CDB_MEXC_API_SECRET: does not look like a MEXC secret key (32 lowercase hex characters)",
    )
    assert isinstance(result.error(), ConfigurationError)


async def test_a_key_mexc_rejects_is_refused(
    sim: SimServer, live_env: Callable[[SimServer], Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    live_env(sim)
    wrong = "ffffffffffffffffffffffffffffffff"
    monkeypatch.setenv("CDB_MEXC_API_SECRET", wrong)
    result = await live_gate(
        load_settings(),
        symbols=SYMBOLS,
        confirm_live=True,
        prompt=None,
        portfolio_restored=RESTORED,
    )
    ok, detail = _condition(result, "mexc keys")
    assert not ok
    assert detail.startswith(f"{MASKED} rejected by MEXC: ")
    assert not _condition(result, "systemcheck")[0]  # its keys row fails too
    error = result.error()
    assert isinstance(error, CheckFailed)
    assert exit_code_for(error) == ExitCode.CHECK_FAILED
    everything = str(result.rows()) + error.message + str(error.details)
    assert wrong not in everything


async def test_clock_skew_beyond_half_the_recv_window_is_refused(
    live_env: Callable[[SimServer], Settings],
) -> None:
    """A MEXC whose clock runs 3 s ahead: signing still works (the offset is measured), but
    live trading needs the offset below recvWindow / 2 = 2.5 s."""
    skewed = SimExchange(_config(), clock_ms=lambda: time.time_ns() // 1_000_000 + 3_000)
    async with SimServer(skewed) as sim:
        result = await live_gate(
            live_env(sim),
            symbols=SYMBOLS,
            confirm_live=True,
            prompt=None,
            portfolio_restored=RESTORED,
        )
    ok, detail = _condition(result, "systemcheck")
    assert not ok
    assert detail.startswith("mexc clock failed (offset +")
    assert "below half the recvWindow (2500 ms)" in detail
    assert _condition(result, "mexc keys")[0]
    assert isinstance(result.error(), CheckFailed)


async def test_an_untradable_symbol_is_refused(
    sim: SimServer, live_env: Callable[[SimServer], Settings]
) -> None:
    result = await live_gate(
        live_env(sim),
        symbols=["BTCUSDT", "SOLUSDT"],  # the simulator lists no SOLUSDT
        confirm_live=True,
        prompt=None,
        portfolio_restored=RESTORED,
    )
    ok, detail = _condition(result, "systemcheck")
    assert not ok
    assert "mexc trading failed (not tradable): SOLUSDT is not listed" in detail


async def test_default_risk_limits_and_metrics_port_are_refused(
    sim: SimServer, live_env: Callable[[SimServer], Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    live_env(sim)
    monkeypatch.delenv("CDB_MAX_EXPOSURE_PCT")
    monkeypatch.delenv("CDB_HTTP_PORT")
    monkeypatch.setenv("CDB_MAX_SPREAD_PCT", "100")
    result = await live_gate(
        load_settings(),
        symbols=SYMBOLS,
        confirm_live=True,
        prompt=None,
        portfolio_restored=RESTORED,
    )
    assert _condition(result, "risk limits") == (
        False,
        "still at their defaults, set them yourself: CDB_MAX_EXPOSURE_PCT (default 30) (the "
        "defaults are for paper trading); CDB_MAX_SPREAD_PCT=100 must be below 100",
    )
    ok, detail = _condition(result, "metrics endpoint")
    assert not ok
    assert detail.startswith("CDB_HTTP_PORT is not set")
    error = result.error()
    assert isinstance(error, ConfigurationError)
    assert error.message.startswith("cdb run --live refused: risk limits: ")
    assert len(error.details) == 2


async def test_an_unrestored_portfolio_is_refused(
    sim: SimServer, live_env: Callable[[SimServer], Settings]
) -> None:
    result = await live_gate(
        live_env(sim),
        symbols=SYMBOLS,
        confirm_live=True,
        prompt=None,
        portfolio_restored=(False, "BTC balance 0.5 at MEXC, 0.4 in the store"),
    )
    error = result.error()
    assert isinstance(error, CheckFailed)
    assert error.message == (
        "cdb run --live refused: portfolio restored: BTC balance 0.5 at MEXC, 0.4 in the store"
    )


async def test_without_confirmation_off_a_terminal_it_is_refused(
    sim: SimServer, live_env: Callable[[SimServer], Settings]
) -> None:
    result = await live_gate(
        live_env(sim),
        symbols=SYMBOLS,
        confirm_live=False,
        prompt=None,
        portfolio_restored=RESTORED,
    )
    assert result.failed == [result.conditions[-1]]
    assert _condition(result, "operator confirmed") == (
        False,
        "not on a terminal: pass --confirm-live",
    )
    error = result.error()
    assert isinstance(error, CheckFailed)
    assert exit_code_for(error) == ExitCode.CHECK_FAILED


async def test_on_a_terminal_typing_the_masked_key_confirms(
    sim: SimServer, live_env: Callable[[SimServer], Settings]
) -> None:
    settings = live_env(sim)
    asked: list[str] = []

    def typing(answer: str) -> Callable[[str], str]:
        def prompt(question: str) -> str:
            asked.append(question)
            return answer

        return prompt

    wrong = await live_gate(
        settings,
        symbols=SYMBOLS,
        confirm_live=False,
        prompt=typing("yes"),
        portfolio_restored=RESTORED,
    )
    assert _condition(wrong, "operator confirmed") == (
        False,
        "the typed key does not match: not confirmed",
    )
    right = await live_gate(
        settings,
        symbols=SYMBOLS,
        confirm_live=False,
        prompt=typing(f" {MASKED}\n"),
        portfolio_restored=RESTORED,
    )
    assert right.ok, right.rows()
    assert _condition(right, "operator confirmed") == (True, f"typed {MASKED} at the prompt")
    assert len(asked) == 2
    assert MASKED in asked[0]
    assert SECRET not in asked[0]


async def test_the_operator_is_not_asked_when_another_condition_fails(
    sim: SimServer, live_env: Callable[[SimServer], Settings]
) -> None:
    asked: list[str] = []

    def prompt(question: str) -> str:
        asked.append(question)
        return MASKED

    result = await live_gate(
        live_env(sim),
        symbols=SYMBOLS,
        confirm_live=False,
        prompt=prompt,
        portfolio_restored=(False, "not reconciled"),
    )
    assert asked == []
    assert _condition(result, "operator confirmed") == (
        False,
        "not asked: another condition failed",
    )


async def test_an_unreachable_mexc_is_refused(
    sim: SimServer, live_env: Callable[[SimServer], Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    live_env(sim)
    monkeypatch.setenv("CDB_MEXC_REST_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("CDB_MEXC_WS_URL", "ws://127.0.0.1:1/ws")
    result = await live_gate(
        load_settings(),
        symbols=SYMBOLS,
        confirm_live=True,
        prompt=None,
        portfolio_restored=RESTORED,
    )
    ok, detail = _condition(result, "mexc keys")
    assert not ok
    assert detail.startswith("MEXC unreachable: ")
    ok, detail = _condition(result, "systemcheck")
    assert not ok
    assert "mexc rest failed (unreachable)" in detail
    assert isinstance(result.error(), CheckFailed)


async def gate(settings: Settings, env_file: Path | None = None) -> GateResult:
    """The gate as `cdb run --live --confirm-live` asks it, the portfolio restored."""
    return await live_gate(
        settings,
        symbols=SYMBOLS,
        confirm_live=True,
        prompt=None,
        portfolio_restored=RESTORED,
        env_file=env_file,
    )


# --- issue 27: the gate judges the run's own .env and credential files ---------------------------


async def test_a_world_readable_env_file_with_the_keys_refuses_naming_it(
    sim: SimServer,
    live_env: Callable[[SimServer], Settings],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`chmod 644 .env` with the keys in it: the gate's systemcheck judges that very file, as
    `cdb systemcheck` in the same folder does, and fails; the refusal is exit 4 and names it."""
    live_env(sim)
    env_file = tmp_path / ".env"
    env_file.write_text(f"CDB_MEXC_API_KEY={API_KEY}\nCDB_MEXC_API_SECRET={SECRET}\n")
    env_file.chmod(0o644)
    monkeypatch.delenv("CDB_MEXC_API_KEY")
    monkeypatch.delenv("CDB_MEXC_API_SECRET")
    result = await gate(load_settings(env_file), env_file)
    ok, detail = _condition(result, "systemcheck")
    assert not ok
    assert f"readable by group/others (mode 0644); run: chmod 600 {env_file}" in detail
    error = result.error()
    assert isinstance(error, CheckFailed)  # exit 4
    assert str(env_file) in " ".join(error.details)
    assert SECRET not in str(result.rows())
    env_file.chmod(0o600)
    again = await gate(load_settings(env_file), env_file)
    assert again.ok, again.rows()


async def test_a_copied_env_example_leaves_the_limits_to_decide(
    sim: SimServer,
    live_env: Callable[[SimServer], Settings],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`cp .env.example .env` plus the keys: the example ships the limits and the metrics port
    commented out, so the gate names each one still at its default and refuses (exit 3)."""
    live_env(sim)
    for name in ("DAILY_DRAWDOWN_PCT", "CIRCUIT_BREAKER_PCT", "MAX_EXPOSURE_PCT"):
        monkeypatch.delenv(f"CDB_{name}")
    monkeypatch.delenv("CDB_MAX_POSITION_QUOTE")
    monkeypatch.delenv("CDB_HTTP_PORT")
    env_file = tmp_path / ".env"
    env_file.write_text(ENV_EXAMPLE.read_text())
    env_file.chmod(0o600)
    result = await gate(load_settings(env_file), env_file)
    ok, detail = _condition(result, "risk limits")
    assert not ok
    assert detail.startswith(
        "still at their defaults, set them yourself: CDB_DAILY_DRAWDOWN_PCT (default 5), "
        "CDB_CIRCUIT_BREAKER_PCT (default 10), CDB_MAX_EXPOSURE_PCT (default 30), "
        "CDB_MAX_POSITION_QUOTE (default 50000)"
    )
    assert not _condition(result, "metrics endpoint")[0]
    assert isinstance(result.error(), ConfigurationError)  # exit 3


async def test_keys_given_only_as_systemd_credentials_pass_and_a_loose_one_fails(
    sim: SimServer,
    live_env: Callable[[SimServer], Settings],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The MEXC keys as LoadCredential= provides them ($CREDENTIALS_DIRECTORY, nothing in the
    environment or .env): MEXC accepts them and the gate passes; the secret's file readable by
    others fails the gate, naming the file."""
    live_env(sim)
    monkeypatch.delenv("CDB_MEXC_API_KEY")
    monkeypatch.delenv("CDB_MEXC_API_SECRET")
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "CDB_MEXC_API_KEY").write_text(API_KEY)
    (credentials / "CDB_MEXC_API_SECRET").write_text(SECRET + "\n")
    for path in credentials.iterdir():
        path.chmod(0o400)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    result = await gate(load_settings())
    assert result.ok, result.rows()
    assert _condition(result, "mexc keys") == (True, f"{MASKED} accepted by MEXC")
    loose = credentials / "CDB_MEXC_API_SECRET"
    loose.chmod(0o644)
    refused = await gate(load_settings())
    ok, detail = _condition(refused, "systemcheck")
    assert not ok
    assert str(loose) in detail
    assert SECRET not in str(refused.rows())
