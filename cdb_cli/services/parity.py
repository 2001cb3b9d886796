"""``cdb parity``: re-run a stored paper or live run on its own market events and explain every
difference (the matching and the attribution are :mod:`cdb_cli.engine.parity`'s).

A run is one or more **segments**, one per start of ``cdb run`` (a restart begins a new one).
Each segment is re-run the way the run itself went through it:

* from the account the run started it with (the ledger from the run's fills before it, the
  orders still working, a halt resumed), at the **settings and instruments its start audit
  recorded** (the settings hash checked), its strategy warmed with the **history it recorded**;
* its stored trades and quotes go through the one :class:`~cdb_cli.engine.ticks.TickDriver`
  in time order; a bar the run's clock closed (no trade of the next interval came first) is
  closed at the time the run stored for it; each decision is taken at the time the run took
  the same bar's decision (the wall clock is an input like the market);
* the operator's halts and resets are applied when the run picked them up.

A paper run is re-run with its own paper model; a live run with the paper model **calibrated
from its own orders and fills** (the latency from an order to its first fill, the share of
orders filled in parts). What differs then is the venue's doing, or unexplained.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cdb_cli import __version__
from cdb_cli.engine.errors import ConfigurationError, StateError
from cdb_cli.engine.parity import (
    ParityReport,
    compare,
)
from cdb_cli.services.parity_rerun import Collector
from cdb_cli.services.parity_segments import Segment, calibrate, find_segments, restart_windows

if TYPE_CHECKING:
    from cdb_cli.engine.ports.store import Store
    from cdb_cli.settings import Settings

__all__ = ["ParityResult", "Segment", "find_segments", "run_parity"]


@dataclass
class ParityResult:
    """What ``cdb parity`` reports: the comparison and how it was made."""

    report: ParityReport
    segments: list[Segment]
    mode: str
    symbols: list[str]
    since_ns: int
    until_ns: int
    versions: list[str]
    settings_note: str
    calibration: dict[str, str] = field(default_factory=dict)

    @property
    def crosses_versions(self) -> bool:
        return any(version != __version__ for version in self.versions)


# --- the comparison ----------------------------------------------------------------------------


def run_parity(
    store: Store,
    settings: Settings,
    *,
    run_ids: Sequence[str] = (),
    symbols: Sequence[str] = (),
    since_ns: int | None = None,
    until_ns: int | None = None,
) -> ParityResult:
    """Re-run the segments and compare them with what the run did (see the module docstring)."""
    segments = find_segments(store, run_ids)
    since = since_ns if since_ns is not None else segments[0].begin_ns
    until = until_ns if until_ns is not None else segments[-1].end_ns
    chosen = [s for s in segments if s.end_ns >= since and s.begin_ns <= until]
    if not chosen:
        raise StateError("No run segment lies in that window (--since/--until)")
    mode = chosen[0].mode
    all_symbols = sorted({x for s in chosen for x in s.start.detail.get("symbols", "").split(",")})
    wanted = [x for x in all_symbols if x and (not symbols or x in symbols)]
    if not wanted:
        raise ConfigurationError(f"The run traded {', '.join(all_symbols)}, not {symbols}")
    fills = store.fills()
    orders = store.orders()
    calibration = calibrate(orders, fills) if mode == "live" else {}
    collector = Collector(store, wanted, settings)
    notes: list[str] = []
    for segment in chosen:
        notes.append(collector.replay_segment(segment, fills, orders, calibration, since, until))
    data = collector.parity_input(mode == "paper", since, until)
    data.windows.extend(restart_windows(chosen))
    data.windows.sort(key=lambda w: w.start_ns)
    report = compare(data)
    versions = sorted({s.start.detail.get("cdb_version", "?") for s in chosen})
    return ParityResult(
        report=report,
        segments=chosen,
        mode=mode,
        symbols=wanted,
        since_ns=since,
        until_ns=until,
        versions=versions,
        settings_note=sorted(set(notes))[0] if len(set(notes)) == 1 else "; ".join(notes),
        calibration={k: str(v) for k, v in calibration.items()},
    )
