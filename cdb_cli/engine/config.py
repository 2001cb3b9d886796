"""The engine's configuration models: the one definition of every trading parameter.

Each field's type, default, bounds and description are written here and nowhere else. The
operator sets them as flat ``CDB_*`` variables: ``cdb_cli.settings`` derives those settings fields
from these models (``RiskLimits.daily_drawdown_pct`` → ``CDB_DAILY_DRAWDOWN_PCT``,
``PaperExecutionConfig.latency_ms`` → ``CDB_PAPER_LATENCY_MS``), and the kernel builds these models
back from the settings. So ``.env.example``, the README's table and ``cdb env-validate`` say what
the engine enforces, by construction.

Cross-field rules raise ``ValueError`` messages that name the fields as ``name (value)``; the
settings layer reports them under the ``CDB_*`` names.

Pure: stdlib and pydantic only (cheap to import: every command loads the settings).
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["PaperExecutionConfig", "RiskLimits", "SignalConfig"]


class RiskLimits(BaseModel):
    """The risk limits (DESIGN.md "Risk rules"), frozen; the kernel maps ``Settings`` onto it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    daily_drawdown_pct: Decimal = Field(
        default=Decimal("5"),
        gt=0,
        le=100,
        description="Block new entries for the day when equity falls this % below start of day.",
    )
    max_exposure_pct: Decimal = Field(
        default=Decimal("30"),
        gt=0,
        le=100,
        description="Largest total position value as % of equity; orders are reduced to fit.",
    )
    circuit_breaker_pct: Decimal = Field(
        default=Decimal("10"),
        gt=0,
        le=100,
        description="Halt all trading when equity falls this % below its peak (cdb risk reset).",
    )
    min_position_quote: Decimal = Field(
        default=Decimal("100"),
        gt=0,
        description="Smallest order in quote currency; smaller orders are rejected.",
    )
    max_position_quote: Decimal = Field(
        default=Decimal("50000"),
        gt=0,
        description="Largest order in quote currency; larger orders are capped.",
    )
    max_spread_pct: Decimal = Field(
        default=Decimal("0.1"),
        gt=0,
        le=100,
        description="Reject when the bid/ask spread exceeds this %.",
    )
    stale_data_seconds: int = Field(
        default=30, ge=1, le=3600, description="Reject when the last price is older than this."
    )
    risk_per_trade_pct: Decimal = Field(
        default=Decimal("2"),
        gt=0,
        le=100,
        description="Share of equity put at risk by one trade, in %.",
    )
    position_risk_pct: Decimal = Field(
        default=Decimal("5"),
        gt=0,
        le=100,
        description="Assumed adverse move of a position, in %: size = equity * risk / this.",
    )

    @model_validator(mode="after")
    def _check_position_bounds(self) -> RiskLimits:
        if self.min_position_quote > self.max_position_quote:
            raise ValueError(
                f"min_position_quote ({self.min_position_quote}) is above "
                f"max_position_quote ({self.max_position_quote})"
            )
        return self


class SignalConfig(BaseModel):
    """Parameters of :class:`~cdb_cli.engine.signals.EmaCrossStrategy` (the seed's EMA-cross
    rule), frozen."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ema_fast: int = Field(default=12, ge=1, description="Period of the fast EMA of the close.")
    ema_slow: int = Field(
        default=26, ge=1, description="Period of the slow EMA of the close; > ema_fast."
    )
    rsi_period: int = Field(default=14, ge=1, description="Period of the Wilder RSI of the close.")
    rsi_threshold: float = Field(
        default=50.0,
        ge=0.0,
        lt=100.0,
        description="A buy needs RSI strictly above this value (0..100).",
    )
    volume_period: int = Field(
        default=20, ge=1, description="Period of the volume SMA (current bar included)."
    )
    volume_factor: float = Field(
        default=1.5,
        gt=0.0,
        description="A buy needs volume > volume_factor x SMA(volume, volume_period).",
    )
    trend_filter: bool = Field(
        default=False, description="Only buy when the close is above SMA(close, trend_period)."
    )
    trend_period: int = Field(
        default=200, ge=1, description="Period of the close SMA used by the trend filter."
    )

    @model_validator(mode="after")
    def _fast_below_slow(self) -> SignalConfig:
        if self.ema_fast >= self.ema_slow:
            raise ValueError(f"ema_fast ({self.ema_fast}) must be below ema_slow ({self.ema_slow})")
        return self


class PaperExecutionConfig(BaseModel):
    """How paper fills are simulated (frozen); the settings are ``CDB_PAPER_`` + field name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    slippage_min_pct: Decimal = Field(
        default=Decimal("0.1"), ge=0, le=10, description="Smallest adverse slippage, in %."
    )
    slippage_max_pct: Decimal = Field(
        default=Decimal("0.5"), ge=0, le=10, description="Largest adverse slippage, in %."
    )
    latency_ms: int = Field(
        default=100, ge=0, le=60_000, description="Delay before an order can fill, in ms."
    )
    partial_fill_pct: Decimal = Field(
        default=Decimal(0),
        ge=0,
        le=100,
        description="Fill at most this % of a price event's volume (0: fill in one go).",
    )

    @model_validator(mode="after")
    def _ordered(self) -> PaperExecutionConfig:
        if self.slippage_min_pct > self.slippage_max_pct:
            raise ValueError(
                f"slippage_min_pct ({self.slippage_min_pct}) is above slippage_max_pct "
                f"({self.slippage_max_pct})"
            )
        return self
