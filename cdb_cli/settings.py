"""The one settings schema: every ``CDB_*`` variable, its type, default and description.

Everything reads configuration through :class:`Settings`: ``cdb env-validate`` checks against it,
``.env.example`` and the README's configuration table are generated from it
(``python scripts/generate.py``; tests fail when they drift), and every command loads it through
:func:`load_settings`. Sources, later wins: defaults → ``.env`` file → process environment.

The trading parameters are not written here: the risk limits, the signal parameters and the paper
venue's parameters are defined once, in the engine's config models (``cdb_cli.engine.config``), and
their flat ``CDB_*`` fields are derived from them (:data:`ENGINE_CONFIGS`, :func:`engine_config`):
same defaults, bounds and descriptions, and the models' cross-field rules reported under the
``CDB_*`` names.

Secrets (:data:`SECRET_FIELDS`) are ``SecretStr``: they print as ``**********`` and never appear in
an error message, a log line or a dump (:func:`sanitized`).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Final, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from cdb_cli.engine.config import PaperExecutionConfig, RiskLimits, SignalConfig
from cdb_cli.settings_defaults import default_backup_dir, default_database_url, default_spill_dir

__all__ = [
    "ENGINE_CONFIGS",
    "ENV_PREFIX",
    "SECRET_FIELDS",
    "STRATEGY_PREFIX",
    "Settings",
    "default_backup_dir",
    "default_database_url",
    "default_spill_dir",
    "engine_config",
    "env_name",
]

ENV_PREFIX = "CDB_"
STRATEGY_PREFIX = "CDB_STRATEGY_"
"""``CDB_STRATEGY_<NAME>``: a setting of the strategy (``Settings.strategy_params``), except the
settings of that name (``CDB_STRATEGY_MAX_ERRORS``, ``CDB_STRATEGY_PARAMS``)."""
SECRET_FIELDS = frozenset({"mexc_api_key", "mexc_api_secret", "smtp_password", "webhook_urls"})
MEXC_REST_URL = "https://api.mexc.com"
MEXC_WS_URL = "wss://wbs-api.mexc.com/ws"

ENGINE_CONFIGS: Final[Mapping[type[BaseModel], str]] = {
    RiskLimits: "",
    SignalConfig: "",
    PaperExecutionConfig: "paper_",
}
"""The engine's config models whose fields are settings, with the prefix of their names:
``PaperExecutionConfig.latency_ms`` is the setting ``paper_latency_ms`` (``CDB_PAPER_LATENCY_MS``).
Their fields are written once, in ``cdb_cli.engine.config``; :class:`Settings` takes each one's
default, bounds and description from there (:func:`_engine_field`)."""

_ConfigT = TypeVar("_ConfigT", bound=BaseModel)


def env_name(field: str) -> str:
    """The environment variable of a settings field: ``http_port`` → ``CDB_HTTP_PORT``."""
    return f"{ENV_PREFIX}{field.upper()}"


def _engine_field(model: type[BaseModel], name: str) -> Any:
    """The field ``name`` of an engine config model, for the setting it becomes: a copy of its
    ``FieldInfo`` (default, bounds, description), which pydantic takes as the field's definition.
    The declaration (name and annotation) is checked against the model when this module loads."""
    return copy.deepcopy(model.model_fields[name])


def engine_config(settings: Settings, model: type[_ConfigT]) -> _ConfigT:
    """The engine config ``model`` (one of :data:`ENGINE_CONFIGS`) built from ``settings``."""
    prefix = ENGINE_CONFIGS[model]
    return model.model_validate(
        {name: getattr(settings, prefix + name) for name in model.model_fields}
    )


def _as_settings_message(model: type[BaseModel], error: ValidationError) -> str:
    """An engine model's cross-field error with its field names as ``CDB_*`` variables."""
    prefix = ENGINE_CONFIGS[model]
    names = "|".join(sorted(model.model_fields, key=len, reverse=True))
    message = "; ".join(item["msg"].removeprefix("Value error, ") for item in error.errors())
    return re.sub(rf"\b({names})\b", lambda m: env_name(prefix + m.group(1)), message)


class Settings(BaseSettings):
    """Every setting of cdb. Frozen; unknown ``CDB_*`` variables are reported by env-validate."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=None,
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
        case_sensitive=False,
        validate_default=True,
    )

    # -- runtime ----------------------------------------------------------------------------
    mode: Literal["paper", "live"] = Field(
        default="paper",
        description="Trading mode the settings are meant for; live requires MEXC API keys.",
    )
    database_url: str = Field(
        default_factory=default_database_url,
        description="SQLAlchemy URL of the store: sqlite:///PATH (default: cdb.db in the user "
        "data dir) or postgresql+psycopg://USER:PASSWORD@HOST:5432/DB.",
    )
    bus_url: str = Field(
        default="memory://",
        description="Message bus: memory:// (in process) or redis://HOST:6379/0 (Redis Streams).",
    )
    bus_prefix: str = Field(
        default="cdb",
        pattern=r"^[A-Za-z0-9_.:-]{1,64}$",
        description="Key prefix of the Redis streams, so several bots can share one Redis.",
    )
    http_host: str = Field(
        default="127.0.0.1", description="Address the health and metrics HTTP server binds."
    )
    http_port: int = Field(
        default=8000, ge=1, le=65535, description="Port of /health, /ready and /metrics."
    )
    symbols: Annotated[list[str], NoDecode] = Field(
        default=["BTCUSDT", "ETHUSDT"],
        description="Comma-separated MEXC spot symbols to trade, e.g. BTCUSDT,ETHUSDT.",
    )

    # -- MEXC -------------------------------------------------------------------------------
    mexc_rest_url: str = Field(
        default=MEXC_REST_URL, description="MEXC REST base URL (point at cdb sim-exchange offline)."
    )
    mexc_ws_url: str = Field(default=MEXC_WS_URL, description="MEXC spot WebSocket URL.")
    mexc_api_key: SecretStr | None = Field(
        default=None, description="MEXC API access key (mx0…). Secret: never printed."
    )
    mexc_api_secret: SecretStr | None = Field(
        default=None, description="MEXC API secret key (32 hex characters). Secret: never printed."
    )

    # -- risk limits (DESIGN.md "Risk rules"): derived from the engine's RiskLimits ----------
    daily_drawdown_pct: Decimal = _engine_field(RiskLimits, "daily_drawdown_pct")
    max_exposure_pct: Decimal = _engine_field(RiskLimits, "max_exposure_pct")
    circuit_breaker_pct: Decimal = _engine_field(RiskLimits, "circuit_breaker_pct")
    min_position_quote: Decimal = _engine_field(RiskLimits, "min_position_quote")
    max_position_quote: Decimal = _engine_field(RiskLimits, "max_position_quote")
    max_spread_pct: Decimal = _engine_field(RiskLimits, "max_spread_pct")
    stale_data_seconds: int = _engine_field(RiskLimits, "stale_data_seconds")
    risk_per_trade_pct: Decimal = _engine_field(RiskLimits, "risk_per_trade_pct")
    position_risk_pct: Decimal = _engine_field(RiskLimits, "position_risk_pct")

    # -- signals (the seed's EMA-cross rule): derived from the engine's SignalConfig ----------
    ema_fast: int = _engine_field(SignalConfig, "ema_fast")
    ema_slow: int = _engine_field(SignalConfig, "ema_slow")
    rsi_period: int = _engine_field(SignalConfig, "rsi_period")
    rsi_threshold: float = _engine_field(SignalConfig, "rsi_threshold")
    volume_period: int = _engine_field(SignalConfig, "volume_period")
    volume_factor: float = _engine_field(SignalConfig, "volume_factor")
    trend_filter: bool = _engine_field(SignalConfig, "trend_filter")
    trend_period: int = _engine_field(SignalConfig, "trend_period")

    # -- the strategy (cdb_cli.kernel.strategies) --------------------------------------------
    strategy: str = Field(
        default="ema_cross",
        min_length=1,
        description="The strategy: a built-in (ema_cross, the seed's rule with the settings "
        "above; mean_reversion; regime), path/to/file.py:Class or module:Class. Its own settings: "
        "CDB_STRATEGY_<NAME>=VALUE or --set NAME=VALUE (see README, Writing a strategy).",
    )
    strategy_max_errors: int = Field(
        default=10,
        ge=1,
        description="Disable a symbol's strategy after this many exceptions in its code during a "
        "run (each is logged with its bar; risk's limits keep managing the positions).",
    )
    strategy_params: dict[str, str] = Field(
        default_factory=dict,
        description="The strategy's own settings by name (JSON); cdb fills it from the "
        "CDB_STRATEGY_<NAME> variables and --set, which are the way to set them.",
    )

    # -- paper execution and replay ---------------------------------------------------------
    starting_cash: Decimal = Field(
        default=Decimal("10000"),
        gt=0,
        max_digits=38,
        decimal_places=8,
        description="Quote-currency cash a new paper account (or a replay) starts with.",
    )
    # CDB_PAPER_* + a field of the engine's PaperExecutionConfig
    paper_slippage_min_pct: Decimal = _engine_field(PaperExecutionConfig, "slippage_min_pct")
    paper_slippage_max_pct: Decimal = _engine_field(PaperExecutionConfig, "slippage_max_pct")
    paper_latency_ms: int = _engine_field(PaperExecutionConfig, "latency_ms")
    paper_partial_fill_pct: Decimal = _engine_field(PaperExecutionConfig, "partial_fill_pct")
    paper_fee_pct: Decimal = Field(
        default=Decimal("0.05"),
        ge=0,
        le=5,
        description="Taker fee of simulated fills, in % of the notional (MEXC spot: 0.05).",
    )
    paper_seed: int = Field(
        default=0, ge=0, description="Seed of the simulated slippage, so runs are reproducible."
    )
    assumed_spread_pct: Decimal = Field(
        default=Decimal("0.05"),
        gt=0,
        le=100,
        description="Bid/ask spread assumed around the close when the data has no quotes, in %.",
    )

    bar_seconds: int = Field(
        default=60,
        ge=1,
        le=3600,
        description="Length of the strategy's bars in cdb run, in seconds (warm-up history is "
        "1-minute klines, so keep 60 outside tests and rehearsals).",
    )

    # -- live trading (cdb run --live) ----------------------------------------------------------
    live_entry_order: Literal["market", "limit"] = Field(
        default="market",
        description="How cdb run --live enters: market (quoteOrderQty) or limit (at the "
        "decision's price, canceled after CDB_LIVE_LIMIT_TIMEOUT_SECONDS). Exits are market.",
    )
    live_limit_timeout_seconds: int = Field(
        default=30,
        ge=1,
        le=86_400,
        description="Cancel what a limit entry has not filled after this many seconds.",
    )
    live_limit_slippage_pct: Decimal = Field(
        default=Decimal("0.5"),
        gt=0,
        le=10,
        description="On a symbol that takes no MARKET orders (MEXC orderTypes without MARKET, or "
        "error 30051), cdb run --live sends LIMIT orders this % past the decision's price "
        "instead (buys above, sells below), canceled after CDB_LIVE_LIMIT_TIMEOUT_SECONDS.",
    )
    live_balance_tolerance_pct: Decimal = Field(
        default=Decimal("0.1"),
        ge=0,
        le=10,
        description="cdb run --live refuses to start when an account balance differs from the "
        "ledger by more than this % (see cdb reconcile).",
    )

    # -- operations (backups, systemcheck) ----------------------------------------------------
    backup_dir: Path = Field(
        default_factory=default_backup_dir,
        description="Folder of `cdb backup` files (default: backups in the user data dir); "
        "created with mode 0700.",
    )
    backup_keep_days: int = Field(
        default=30,
        ge=1,
        le=3650,
        description="Days `cdb backup prune` keeps backups; the newest backup is always kept.",
    )
    backup_max_age_hours: int = Field(
        default=26,
        ge=1,
        le=24 * 365,
        description="systemcheck warns when the last verified backup is older than this.",
    )
    spill_dir: Path = Field(
        default_factory=default_spill_dir,
        description="Folder where a run that stops with its store down writes what the store did "
        "not take (`cdb-unsaved-RUN.jsonl`, 0600); the next start loads it back (default: unsaved "
        "in the user data dir).",
    )
    store_outage_limit_seconds: int = Field(
        default=3600,
        ge=10,
        le=7 * 24 * 3600,
        description="How long cdb run waits out a store that takes no writes (no new entries "
        "meanwhile) before it stops with exit 1.",
    )
    spill_fallback_dir: Path | None = Field(
        default=None,
        description="Folder tried when CDB_SPILL_DIR cannot take a spill file (a full disk); "
        "also searched at start (default: the working directory).",
    )
    pg_bin_dir: Path | None = Field(
        default=None,
        description="Folder holding pg_dump and pg_restore (default: found on PATH).",
    )
    run_backup_at: str | None = Field(
        default=None,
        pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
        description="HH:MM (UTC): cdb run also makes a verified backup and prunes old ones daily "
        "at this time (what `cdb backup create --verify --prune` does); unset: only from cron.",
    )
    run_daily_check_at: str | None = Field(
        default=None,
        pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
        description="HH:MM (UTC): cdb run also runs `cdb systemcheck --daily` (and mails it when "
        "CDB_SMTP_HOST is set) daily at this time; unset: only from cron.",
    )

    # -- notifications (alert and daily-check mail) --------------------------------------------
    smtp_host: str | None = Field(
        default=None,
        description="SMTP server for alert and daily-check mail; unset: no mail is sent.",
    )
    smtp_port: int = Field(
        default=587, ge=1, le=65535, description="SMTP port (587 STARTTLS, 465 SSL, 25 plain)."
    )
    smtp_tls: Literal["starttls", "ssl", "none"] = Field(
        default="starttls",
        description="SMTP encryption: starttls (upgrade after connect), ssl (TLS from the start) "
        "or none (local relays only).",
    )
    smtp_user: str | None = Field(
        default=None, description="SMTP login; unset: send without logging in."
    )
    smtp_password: SecretStr | None = Field(
        default=None, description="SMTP password of CDB_SMTP_USER. Secret: never printed."
    )
    smtp_from: str | None = Field(
        default=None, description="Sender address of cdb's mail; required with CDB_SMTP_HOST."
    )
    smtp_to: Annotated[list[str], NoDecode] = Field(
        default=[],
        description="Comma-separated recipients of cdb's mail; required with CDB_SMTP_HOST.",
    )
    alert_min_interval_s: int = Field(
        default=600,
        ge=0,
        le=7 * 24 * 3600,
        description="Send at most one alert per subject in this many seconds, by mail and "
        "webhook alike (0: no limit).",
    )
    notify_fills: bool = Field(
        default=False, description="Also send each fill of cdb run (one process) as an alert."
    )
    webhook_urls: SecretStr | None = Field(
        default=None,
        description="Comma-separated FORMAT:URL webhooks that receive the alerts too; FORMAT is "
        "slack, mattermost, discord, telegram, ntfy or json (see README, Notifications). "
        "Secret: the URLs hold tokens, never printed.",
    )

    @field_validator(
        "pg_bin_dir",
        "smtp_host",
        "smtp_user",
        "smtp_from",
        "run_backup_at",
        "run_daily_check_at",
        "webhook_urls",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("backup_dir", "pg_bin_dir")
    @classmethod
    def _absolute_path(cls, value: Path | None) -> Path | None:
        # cron and other working directories must see the same folder
        return None if value is None else value.expanduser().absolute()

    @field_validator("symbols", "smtp_to", mode="before")
    @classmethod
    def _split_symbols(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("smtp_from")
    @classmethod
    def _check_sender(cls, value: str | None) -> str | None:
        if value is not None and not _is_address(value):
            raise ValueError(f"{value!r} is not a mail address")
        return value

    @field_validator("smtp_to")
    @classmethod
    def _check_recipients(cls, value: list[str]) -> list[str]:
        for address in value:
            if not _is_address(address):
                raise ValueError(f"{address!r} is not a mail address")
        return value

    @field_validator("symbols")
    @classmethod
    def _check_symbols(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one symbol is required")
        for symbol in value:
            if not symbol.isalnum() or not symbol.isupper():
                raise ValueError(f"{symbol!r} is not a MEXC spot symbol like BTCUSDT")
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        scheme = urlsplit(value).scheme
        if not (scheme.startswith("sqlite") or scheme.startswith("postgresql")):
            raise ValueError("must start with sqlite:/// or postgresql+psycopg://")
        return value

    @field_validator("bus_url")
    @classmethod
    def _check_bus_url(cls, value: str) -> str:
        if urlsplit(value).scheme not in {"memory", "redis", "rediss"}:
            raise ValueError("must be memory:// or redis://HOST:PORT/DB")
        return value

    @field_validator("mexc_rest_url")
    @classmethod
    def _check_rest_url(cls, value: str) -> str:
        if urlsplit(value).scheme not in {"http", "https"}:
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("mexc_ws_url")
    @classmethod
    def _check_ws_url(cls, value: str) -> str:
        if urlsplit(value).scheme not in {"ws", "wss"}:
            raise ValueError("must be a ws:// or wss:// URL")
        return value

    @model_validator(mode="after")
    def _check_engine_configs(self) -> Settings:
        # The engine models' own cross-field rules (min below max, fast below slow), reported
        # under the CDB_* names: the models are built here as the kernel will build them.
        for model in ENGINE_CONFIGS:
            try:
                engine_config(self, model)
            except ValidationError as e:
                raise ValueError(_as_settings_message(model, e)) from None
        return self

    @field_validator("webhook_urls")
    @classmethod
    def _check_webhook_urls(cls, value: SecretStr | None) -> SecretStr | None:
        from cdb_cli.adapters.notify.webhook import parse_webhook_urls

        if value is not None:  # a bad entry: one line naming its position, never its URL
            parse_webhook_urls(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _check_smtp(self) -> Settings:
        if (self.smtp_user is None) != (self.smtp_password is None):
            raise ValueError("CDB_SMTP_USER and CDB_SMTP_PASSWORD are set together or not at all")
        if self.smtp_host is None:
            return self
        missing = [env_name(name) for name in ("smtp_from", "smtp_to") if not getattr(self, name)]
        if missing:
            verb = "are" if len(missing) > 1 else "is"
            raise ValueError(f"CDB_SMTP_HOST is set but {' and '.join(missing)} {verb} not")
        return self


def _check_engine_fields(schema: type[BaseSettings]) -> None:
    """Every field of the engine's config models is a field of ``schema`` with the model's type,
    default, bounds and description (what :func:`_engine_field` gives); run on :class:`Settings`
    at import, so a missing, retyped or hand-written declaration fails at once."""
    for model, prefix in ENGINE_CONFIGS.items():
        for name, field in model.model_fields.items():
            setting = schema.model_fields.get(prefix + name)
            if setting is None or repr(setting) != repr(field):
                raise TypeError(
                    f"Settings.{prefix}{name} must be declared as "
                    f"'{prefix}{name}: {field.annotation} = _engine_field({model.__name__}, "
                    f"{name!r})'"
                )


_check_engine_fields(Settings)


def _is_address(value: str) -> bool:
    """``ops@example.org`` or ``Ops <ops@example.org>``: one address with a local part and host."""
    from email.utils import parseaddr

    _, address = parseaddr(value)
    local, at, host = address.rpartition("@")
    return bool(at and local and ("." in host or host == "localhost"))
