"""The events' wire codec, run on demand: ``python benchmarks/events_codec.py``.

Every hop of the components' decision path writes events (``encode_event``) and reads them
(``decode_event``): marketdata writes the bar twice, signals reads it and writes the signal and
its progress, risk reads those and writes the decision, the approval and its progress, execution
reads those. Prints, per event type, the median time of one write and one read, next to the way
the codec worked until 2026-12 (Python's ``json`` around ``model_dump``/``model_validate``), so the
gain can be checked on any host. No target: the latency benchmark is what the issue judges.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from cdb_cli.engine.events import (
    EVENT_TYPES,
    Bar,
    CheckResult,
    Event,
    HealthReport,
    OrderApproved,
    RiskDecision,
    Side,
    SignalSide,
    TradeTick,
    TradingSignal,
    decode_event,
    encode_event,
)

T0 = 1_767_225_600_000_000_000


def sample_events() -> list[Event]:
    """The events of one approved bar, with realistic values."""
    common: dict[str, Any] = {"symbol": "BTCUSDT", "ts_event": T0}
    bar_id = "run-7f3a-bar-BTCUSDT-1767225600"
    return [
        TradeTick(
            **common, source="mexc", price=Decimal("87123.45"), quantity=Decimal("0.000123"),
            aggressor=Side.BUY, trade_id="1736409765051",
        ),
        Bar(
            **common, event_id=bar_id, source="marketdata", interval="1s",
            open=Decimal("87120.1"), high=Decimal("87130.5"), low=Decimal("87110.2"),
            close=Decimal("87123.45"), volume=Decimal("1.234567"), closed_at=T0 + 10**9,
        ),
        TradingSignal(
            **common, source="ema_cross", side=SignalSide.BUY, strategy="ema_cross",
            price=Decimal("87123.45"), strength=0.42, bar_id=bar_id,
            indicators={"ema_fast": 87121.3, "ema_slow": 87118.9, "rsi": 57.1, "volume_ratio": 1.3},
        ),
        RiskDecision(
            **common, source="risk", signal_id="sig-" + bar_id, verdict="reduced",
            side=SignalSide.BUY, requested_quote=Decimal("3959.3513"),
            final_quote=Decimal("2969.5135"),
            checks=tuple(
                CheckResult(
                    rule=rule, code="ok", passed=True, observed=Decimal("12.3456"),
                    limit=Decimal(30),
                )
                for rule in ("spread", "exposure", "position_size", "daily_drawdown", "circuit")
            ),
            state={"equity": "10000.12", "cash": "7030.6", "trading_state": "running"},
        ),
        OrderApproved(
            **common, source="risk", decision_id="run-7f3a-2c", side=Side.BUY,
            quote_amount=Decimal("2969.5135"), reference_price=Decimal("87123.45"),
        ),
        HealthReport(
            **common, source="risk", component="risk", status="ok",
            detail=f"progress {bar_id} 1",
        ),
    ]  # fmt: skip


def json_encode(event: Event) -> bytes:
    """The codec until 2026-12: a dict through Python's json."""
    envelope = {"type": event.TYPE, "v": event.VERSION, "data": event.model_dump(mode="json")}
    return json.dumps(envelope, separators=(",", ":")).encode()


def json_decode(raw: bytes) -> Event:
    envelope = json.loads(raw)
    return EVENT_TYPES[envelope["type"]].model_validate(envelope["data"])


def median_us(call: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter_ns()
        call()
        times.append(time.perf_counter_ns() - started)
    times.sort()
    return times[len(times) // 2] / 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20_000, help="calls per figure")
    runs = parser.parse_args().runs
    rows = []
    for event in sample_events():
        raw = encode_event(event)
        if decode_event(raw) != event or json_decode(raw) != event:
            raise SystemExit(f"{type(event).__name__} does not read back as written")
        rows.append(
            (
                type(event).__name__,
                len(raw),
                median_us(lambda e=event: encode_event(e), runs),
                median_us(lambda e=event: json_encode(e), runs),
                median_us(lambda r=raw: decode_event(r), runs),
                median_us(lambda r=raw: json_decode(r), runs),
            )
        )
    print(f"events codec, median of {runs} calls each (µs)")
    print(f"{'event':<16}{'bytes':>6}{'encode':>9}{'json':>8}{'decode':>9}{'json':>8}")
    for name, size, enc, json_enc, dec, json_dec in rows:
        print(f"{name:<16}{size:>6}{enc:>9.1f}{json_enc:>8.1f}{dec:>9.1f}{json_dec:>8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
