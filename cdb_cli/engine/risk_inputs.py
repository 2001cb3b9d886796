"""What the risk engine decides on: the trading state and the snapshot of one decision.

:class:`RiskInputs` is what the portfolio and the market give the risk engine for one signal; a
:class:`~cdb_cli.engine.events.RiskDecision` stores it as strings (:meth:`RiskInputs.as_strings`),
so a stored decision can be re-decided (``cdb risk explain --what-if``) from
:meth:`RiskInputs.from_strings`. ``cdb_cli.engine.risk`` re-exports both.

Pure: stdlib and ``cdb_cli.engine`` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

__all__ = ["RiskInputs", "TradingState"]


class TradingState(StrEnum):
    """Where the account stands with respect to the loss limits."""

    ACTIVE = "active"  # normal trading
    REDUCING = "reducing"  # daily drawdown hit: only exits allowed for the rest of the day
    HALTED = "halted"  # circuit breaker tripped: nothing until an audited `cdb risk reset`


@dataclass(frozen=True, slots=True)
class RiskInputs:
    """The snapshot the portfolio and the market give the engine for one decision.

    Money is ``Decimal`` in quote currency; ``exposure_quote`` is Σ position value over all
    symbols, ``position_quote_for_symbol`` the value held in the signal's symbol;
    ``last_price_age_ns`` is the age of the latest price, in nanoseconds.
    """

    equity: Decimal
    day_start_equity: Decimal
    peak_equity: Decimal
    exposure_quote: Decimal
    position_quote_for_symbol: Decimal
    bid: Decimal
    ask: Decimal
    last_price_age_ns: int
    trading_state: TradingState = TradingState.ACTIVE
    store_down: bool = False
    """The store that must record a new entry does not take writes (an outage): no entry."""

    @classmethod
    def from_strings(cls, state: Mapping[str, str]) -> RiskInputs:
        """Rebuild the snapshot a decision stored in :attr:`RiskDecision.state`.

        Raises ``ValueError`` when a field is missing or malformed.
        """
        try:
            return cls(
                equity=Decimal(state["equity"]),
                day_start_equity=Decimal(state["day_start_equity"]),
                peak_equity=Decimal(state["peak_equity"]),
                exposure_quote=Decimal(state["exposure_quote"]),
                position_quote_for_symbol=Decimal(state["position_quote_for_symbol"]),
                bid=Decimal(state["bid"]),
                ask=Decimal(state["ask"]),
                last_price_age_ns=int(state["last_price_age_ns"]),
                trading_state=TradingState(state.get("trading_state", "active")),
                store_down=state.get("store_down") == "true",
            )
        except (KeyError, ArithmeticError, ValueError) as e:
            raise ValueError(f"stored risk inputs are incomplete or malformed: {e!r}") from None

    def as_strings(self) -> dict[str, str]:
        """The snapshot as strings, for :attr:`RiskDecision.state`."""
        state = {
            "equity": str(self.equity),
            "day_start_equity": str(self.day_start_equity),
            "peak_equity": str(self.peak_equity),
            "exposure_quote": str(self.exposure_quote),
            "position_quote_for_symbol": str(self.position_quote_for_symbol),
            "bid": str(self.bid),
            "ask": str(self.ask),
            "last_price_age_ns": str(self.last_price_age_ns),
            "trading_state": str(self.trading_state),
        }
        if self.store_down:  # only in an outage: decisions otherwise read as they always did
            state["store_down"] = "true"
        return state
