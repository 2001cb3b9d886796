"""The settings schema: sources, parsing, secrets, sanitised dumps, the engine-derived fields."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import Field, SecretStr, ValidationError

from cdb_cli.engine.config import RiskLimits, SignalConfig
from cdb_cli.engine.errors import ConfigurationError
from cdb_cli.kernel import risk_limits
from cdb_cli.schema_doc import env_example
from cdb_cli.services.governance import OPERATOR_DECIDES
from cdb_cli.settings import (
    ENGINE_CONFIGS,
    Settings,
    _check_engine_fields,
    _engine_field,
    env_name,
)
from cdb_cli.settings_io import load_settings, sanitized, settings_hash


def test_defaults_are_embedded_and_valid() -> None:
    settings = load_settings()
    assert settings.database_url.startswith("sqlite:///")
    assert settings.bus_url == "memory://"
    assert settings.mexc_rest_url == "https://api.mexc.com"
    assert settings.mexc_ws_url == "wss://wbs-api.mexc.com/ws"
    assert settings.max_spread_pct == Decimal("0.1")
    assert settings.min_position_quote == Decimal("100")


def test_environment_wins_over_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = tmp_path / ".env"
    env.write_text("CDB_HTTP_PORT=9000\nCDB_SYMBOLS=BTCUSDT, XRPUSDT\n", encoding="utf-8")
    assert load_settings(env).http_port == 9000
    assert load_settings(env).symbols == ["BTCUSDT", "XRPUSDT"]
    monkeypatch.setenv("CDB_HTTP_PORT", "9100")
    assert load_settings(env).http_port == 9100


def test_invalid_values_raise_configuration_error_per_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CDB_HTTP_PORT", "0")
    monkeypatch.setenv("CDB_STALE_DATA_SECONDS", "many")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert [line.split(":")[0] for line in caught.value.details] == [
        "CDB_HTTP_PORT",
        "CDB_STALE_DATA_SECONDS",
    ]


def test_cross_field_rule_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDB_MIN_POSITION_QUOTE", "60000")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert "CDB_MIN_POSITION_QUOTE (60000) is above CDB_MAX_POSITION_QUOTE" in "\n".join(
        caught.value.details
    )


def test_secrets_never_show_in_repr_dump_or_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "45d0b3c26f2644f19bfb98b07741b2f5"
    monkeypatch.setenv("CDB_MEXC_API_SECRET", secret)
    monkeypatch.setenv("CDB_DATABASE_URL", "postgresql+psycopg://cdb:hunter2@db:5432/cdb")
    settings = load_settings()
    assert secret not in repr(settings)
    dump = str(sanitized(settings))
    assert secret not in dump
    assert "hunter2" not in dump
    assert sanitized(settings)["mexc_api_secret"] == "REDACTED"
    # The hash ignores secrets (same hash with another secret) but not the limits.
    same = settings.model_copy(update={"mexc_api_secret": SecretStr("f" * 32)})
    assert settings_hash(same) == settings_hash(settings)
    other = settings.model_copy(update={"max_spread_pct": Decimal("0.2")})
    assert settings_hash(other) != settings_hash(settings)


def test_settings_are_frozen() -> None:
    settings = load_settings()
    with pytest.raises(ValueError, match="frozen"):
        settings.http_port = 1  # type: ignore[misc]


def test_smtp_password_is_redacted_like_the_mexc_secret() -> None:
    settings = Settings(
        smtp_host="mail.example.org",
        smtp_from="cdb@example.org",
        smtp_to="ops@example.org, Owner <owner@example.org>",
        smtp_user="ops",
        smtp_password="pw-7d1e9",
    )
    assert settings.smtp_to == ["ops@example.org", "Owner <owner@example.org>"]
    assert sanitized(settings)["smtp_password"] == "REDACTED"
    assert "pw-7d1e9" not in repr(settings) + str(sanitized(settings))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"smtp_user": "ops"}, "set together"),
        ({"smtp_host": "h.example.org", "smtp_from": "cdb@example.org"}, "CDB_SMTP_TO is not"),
        ({"smtp_to": "ops@example.org,not-an-address"}, "is not a mail address"),
        ({"smtp_from": "@localhost"}, "is not a mail address"),
    ],
)
def test_smtp_settings_are_checked(values: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(overrides=values)
    assert message in " ".join(caught.value.details)


def test_every_engine_config_field_is_a_documented_setting_with_the_engines_default() -> None:
    example = env_example()
    fields = 0
    for model, prefix in ENGINE_CONFIGS.items():
        for name, field in model.model_fields.items():
            fields += 1
            setting = f"{env_name(prefix + name)}={field.default}\n"
            if prefix + name in OPERATOR_DECIDES:  # live trading wants them set by the operator
                setting = (
                    "# Live trading: set it yourself (the live gate refuses the default).\n# "
                    + setting
                )
            assert f"# {field.description}\n{setting}" in example
    assert fields == 21  # 9 risk limits, 8 signal parameters, 4 paper-execution parameters


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"min_position_quote": "60000"},
            "CDB_MIN_POSITION_QUOTE (60000) is above CDB_MAX_POSITION_QUOTE (50000)",
        ),
        ({"ema_fast": "26"}, "CDB_EMA_FAST (26) must be below CDB_EMA_SLOW (26)"),
        (
            {"paper_slippage_min_pct": "0.6"},
            "CDB_PAPER_SLIPPAGE_MIN_PCT (0.6) is above CDB_PAPER_SLIPPAGE_MAX_PCT (0.5)",
        ),
    ],
)
def test_engine_cross_field_rules_are_reported_under_the_variables(
    values: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(overrides=values)
    assert caught.value.details == [f"settings: {message}"]


_RISK_VALUE = st.decimals(min_value=-5, max_value=150, places=2, allow_nan=False)


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "max_spread_pct": _RISK_VALUE,
            "daily_drawdown_pct": _RISK_VALUE,
            "min_position_quote": _RISK_VALUE,
            "max_position_quote": _RISK_VALUE,
            "stale_data_seconds": st.integers(min_value=-1, max_value=4000),
        },
    )
)
def test_settings_accept_exactly_the_risk_limits_the_engine_accepts(values: dict[str, Any]) -> None:
    try:
        expected: RiskLimits | None = RiskLimits(**values)
    except ValidationError:
        expected = None
    try:
        settings: Settings | None = Settings(**values)
    except ValidationError:
        settings = None
    if expected is None:
        assert settings is None
    else:
        assert settings is not None
        assert risk_limits(settings) == expected


def test_a_setting_declared_apart_from_its_engine_model_fails_the_import_check() -> None:
    _check_engine_fields(Settings)  # the real schema passes

    class Retyped(Settings):
        ema_fast: float = _engine_field(SignalConfig, "ema_fast")  # type: ignore[assignment]

    class HandWritten(Settings):
        max_spread_pct: Decimal = Field(default=Decimal("0.2"), gt=0, le=100)

    for schema, setting in ((Retyped, "ema_fast"), (HandWritten, "max_spread_pct")):
        with pytest.raises(TypeError, match=rf"Settings\.{setting} must be declared as"):
            _check_engine_fields(schema)


def test_a_setting_of_its_own_is_no_typo_of_a_secret_one() -> None:
    """``CDB_SMTP_PORT`` is close to ``CDB_SMTP_PASSWORD`` but is a setting of its own: its value
    is not a secret (it was masked everywhere); a real typo's value still is."""
    from cdb_cli.settings_io import secret_values

    found = secret_values({"CDB_SMTP_PORT": "587", "CDB_SMTP_PASWORD": "hunter2-typo"})
    assert found == ["hunter2-typo"]
