"""Rehearsals: real runs that leave real stores, for the tests that examine a finished run
(``cdb parity RUN``, reports). ``pythonpath`` in pyproject.toml makes this module importable.

* :func:`paper_rehearsal`: what an operator does, with real processes. `cdb sim-exchange` moves
  its market on its own; `cdb run --paper` trades against it (fast strategy settings, 1-s bars)
  into a SQLite store; after 40 % of the time the run is stopped with SIGTERM and started again
  with the same environment; in the second segment `cdb risk halt` and, 15 s or more later,
  `cdb risk reset` are run as commands and the rehearsal waits until the run has taken each up
  (its ``trading_state`` audit). It raises :class:`RehearsalFailed` when a process fails or the
  bot did not fill in both segments.
* :func:`live_rehearsal`: the live loop in this process against the simulator, with a thin book
  (each market order fills in several parts) and one order placement booked at the venue but
  answered 503 (``accept_then_5xx``); the market is walked until the bot has bought and exited,
  and the store must then match the venue to the last unit.

Each keeps its files in the folder it is given (a test's ``tmp_path``, or
``tmp_path_factory.mktemp`` for a module-scoped fixture: a 10-minute rehearsal done once).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import httpx

from cdb_cli.engine.errors import CdbError
from cdb_cli.engine.records import AuditRecord, FillRecord
from cdb_cli.engine.runs import HALT_ACTION, RESET_ACTION, STATE_ACTION
from cdb_cli.kernel import open_store
from cdb_cli.runtime.lifecycle import START_ACTION, STOP_ACTION
from cdb_cli.settings import Settings

__all__ = [
    "PAPER_TUNING",
    "LiveRehearsal",
    "Rehearsal",
    "RehearsalFailed",
    "live_rehearsal",
    "live_rehearsal_fixture",
    "paper_rehearsal",
    "paper_rehearsal_fixture",
]

CDB = str(Path(sys.executable).parent / "cdb")
SYMBOL = "BTCUSDT"
PAPER_TUNING: dict[str, str] = {
    "CDB_SYMBOLS": SYMBOL,
    "CDB_BAR_SECONDS": "1",
    "CDB_EMA_FAST": "2",
    "CDB_EMA_SLOW": "4",
    "CDB_RSI_PERIOD": "2",
    "CDB_VOLUME_PERIOD": "3",
    "CDB_VOLUME_FACTOR": "0.01",  # the simulator's volumes are its own: let the cross decide
    "CDB_STALE_DATA_SECONDS": "5",
}
"""Strategy settings that make `cdb run --paper` buy and exit every few seconds on the
simulator's market (measured: 4 round trips in 26 one-second bars)."""
HALT_REASON = "rehearsal: operator halt"
RESET_REASON = "rehearsal: halt over"
ACTOR = "rehearsal"
MIN_HALT_S = 15.0
STOP_TIMEOUT_S = 15.0
PICK_UP_TIMEOUT_S = 15.0
FILL_TIMEOUT_S = 90.0


class RehearsalFailed(RuntimeError):
    """A rehearsal could not do what it must (a process failed, the bot did not trade)."""


@dataclass(frozen=True)
class Rehearsal:
    """What a paper rehearsal left: its store, the environment of its runs, and what happened.

    ``settings_env`` is the run's settings (``CDB_*``) only, for ``CliRunner(env=...)``;
    ``env`` is the whole environment its processes had, for a subprocess."""

    database_url: str
    env: dict[str, str] = field(repr=False)
    settings_env: dict[str, str] = field(repr=False)
    run_ids: list[str]
    """One per segment, in order (from the ``run_start`` audits)."""
    halt_ns: int
    """``ts_event`` of the operator's ``risk_halt`` audit (written by `cdb risk halt`)."""
    reset_ns: int
    """``ts_event`` of the operator's ``risk_reset`` audit (written by `cdb risk reset`)."""
    halted_ns: int
    """``ts_event`` of the run's ``trading_state`` audit ``halted``: when it took the halt up."""
    resumed_ns: int
    """``ts_event`` of the run's ``trading_state`` audit ``active``: when it took the reset up."""
    logs: dict[str, Path]
    """``sim``, ``run-1``, ``run-2``, ``halt``, ``reset``: each process's stderr (output)."""
    fills_per_segment: list[int]
    workdir: Path

    def settings(self) -> Settings:
        """The runs' settings, built from ``settings_env`` alone (no .env file)."""
        return settings_from(self.settings_env)


def settings_from(settings_env: dict[str, str]) -> Settings:
    """``Settings`` from ``CDB_*`` variables alone (not this process's environment)."""
    values: dict[str, Any] = {
        name.removeprefix("CDB_").lower(): value for name, value in settings_env.items()
    }
    return Settings(_env_file=None, **values)


def clean_environment() -> dict[str, str]:
    """This process's environment without any ``CDB_*`` variable: nothing of the developer's
    or a shared setup's settings leaks into a rehearsal."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CDB_")} | {"NO_COLOR": "1"}


# -- the store ------------------------------------------------------------------------------------


def read_audits(url: str, action: str) -> list[AuditRecord]:
    store = open_store(Settings(database_url=url))
    try:
        return list(store.audits(action=action))
    finally:
        store.close()


def read_fills(url: str) -> list[FillRecord]:
    store = open_store(Settings(database_url=url))
    try:
        return list(store.fills())
    finally:
        store.close()


def fills_of(url: str, run_id: str) -> list[FillRecord]:
    """The fills of orders run ``run_id`` placed (client order ids start with the run id)."""
    return [f for f in read_fills(url) if f.client_order_id.startswith(run_id)]


# -- processes ------------------------------------------------------------------------------------


def free_ports(count: int) -> list[int]:
    """``count`` free ports on 127.0.0.1 (``processes_testkit.free_port_block``: below the
    ephemeral range, where no outgoing connection takes them before the process binds)."""
    from importlib import import_module

    base: int = import_module("processes_testkit").free_port_block(count)
    return [base + i for i in range(count)]


class Processes:
    """The rehearsal's processes, each writing its stderr to ``NAME.log`` in ``workdir``."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.env, self.workdir = env, workdir
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}

    def start(self, name: str, args: Sequence[str]) -> subprocess.Popen[bytes]:
        log = self.workdir / f"{name}.log"
        self.logs[name] = log
        with log.open("wb") as err:
            process = subprocess.Popen(
                [CDB, *args], env=self.env, cwd=self.workdir,
                stdout=subprocess.DEVNULL, stderr=err,
            )  # fmt: skip
        self.running[name] = process
        return process

    def tail(self, name: str, chars: int = 3000) -> str:
        log = self.logs.get(name)
        return log.read_text(encoding="utf-8", errors="replace")[-chars:] if log else ""

    def check(self) -> None:
        """Raise when one of the running processes has exited."""
        for name, process in self.running.items():
            if process.poll() is not None:
                raise RehearsalFailed(
                    f"{name} exited {process.returncode} during the rehearsal:\n{self.tail(name)}"
                )

    def wait(self, condition: Callable[[], bool], timeout_s: float, what: str) -> None:
        """Poll ``condition`` until it holds; raise when a process exits or after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.check()
            if condition():
                return
            if time.monotonic() > deadline:
                raise RehearsalFailed(f"timed out after {timeout_s:.0f} s waiting for {what}")
            time.sleep(0.1)

    def hold_until(self, monotonic_deadline: float) -> None:
        """Let the processes run until ``monotonic_deadline``, raising when one exits."""
        while time.monotonic() < monotonic_deadline:
            self.check()
            time.sleep(min(0.2, max(0.0, monotonic_deadline - time.monotonic())))

    def stop(self, name: str) -> None:
        """SIGTERM; it must exit 0 within ``STOP_TIMEOUT_S``."""
        process = self.running.pop(name)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise RehearsalFailed(
                f"{name} did not stop within {STOP_TIMEOUT_S:.0f} s of SIGTERM:\n{self.tail(name)}"
            ) from None
        if process.returncode != 0:
            raise RehearsalFailed(
                f"{name} exited {process.returncode} on SIGTERM:\n{self.tail(name)}"
            )

    def command(self, name: str, args: Sequence[str]) -> str:
        """Run a one-shot command (exit 0 within 60 s); its output."""
        log = self.workdir / f"{name}.log"
        self.logs[name] = log
        done = subprocess.run(
            [CDB, *args], env=self.env, cwd=self.workdir, capture_output=True, text=True,
            timeout=60, check=False,
        )  # fmt: skip
        log.write_text(done.stdout + done.stderr, encoding="utf-8")
        if done.returncode != 0:
            raise RehearsalFailed(f"cdb {' '.join(args)} exited {done.returncode}: {done.stderr}")
        return done.stdout

    def kill_all(self) -> None:
        for process in self.running.values():
            process.kill()
            process.wait()
        self.running.clear()


def simulator_up(rest_url: str) -> bool:
    try:
        return httpx.get(f"{rest_url}/api/v3/ping", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


# -- the paper rehearsal --------------------------------------------------------------------------


@dataclass
class _Schedule:
    """When each act happens, in seconds after the first run starts."""

    seconds: float
    restart: float = field(init=False)
    halt: float = field(init=False)
    reset: float = field(init=False)

    def __post_init__(self) -> None:
        if self.seconds < 45:
            raise ValueError("a paper rehearsal needs 45 s or more (restart, a 15-s halt)")
        self.restart = 0.4 * self.seconds
        second = self.seconds - self.restart
        self.halt = self.restart + 0.25 * second
        self.reset = max(self.halt + MIN_HALT_S, self.restart + 0.5 * second)


def paper_rehearsal(workdir: Path, seconds: float = 600, *, seed: int = 11) -> Rehearsal:
    """Rehearse a paper run for ``seconds`` of wall time, with one restart and one operator halt
    and reset, against `cdb sim-exchange` (``seed``); everything is kept in ``workdir``.

    The schedule, in shares of ``seconds`` after the first run starts: SIGTERM and restart at
    40 %; `cdb risk halt` a quarter into the second segment, `cdb risk reset` halfway through it
    (15 s after the halt at least); SIGTERM at the end. The restart and the halt wait until their
    segment has filled once (``FILL_TIMEOUT_S`` at most), so a quiet market stretches the
    schedule rather than leaving a segment without trades."""
    schedule = _Schedule(seconds)
    workdir.mkdir(parents=True, exist_ok=True)
    sim_port, http_port = free_ports(2)
    rest_url = f"http://127.0.0.1:{sim_port}"
    url = f"sqlite:///{workdir / 'paper.db'}"
    settings_env = {
        **PAPER_TUNING,
        "CDB_DATABASE_URL": url,
        "CDB_MEXC_REST_URL": rest_url,
        "CDB_MEXC_WS_URL": f"ws://127.0.0.1:{sim_port}/ws",
        "CDB_HTTP_PORT": str(http_port),
        # in the rehearsal's folder, not the user data dir: and the settings (their hash) do
        # not depend on where a test's XDG_DATA_HOME points
        "CDB_BACKUP_DIR": str(workdir / "backups"),
        "CDB_SPILL_DIR": str(workdir / "unsaved"),
    }
    home = workdir / "home"
    env = clean_environment() | settings_env
    env |= {"XDG_DATA_HOME": str(home / "data"), "XDG_CONFIG_HOME": str(home / "config")}
    processes = Processes(env, workdir)
    try:
        processes.start(
            "sim",
            ["sim-exchange", "--port", str(sim_port), "-s", SYMBOL, "--seed", str(seed),
             "--tick-interval", "0.05", "--history-days", "0.05"],
        )  # fmt: skip
        processes.wait(lambda: simulator_up(rest_url), 30, "the simulator to answer")
        begun = time.monotonic()
        run_ids = [_start_run(processes, url, 1)]
        processes.hold_until(begun + schedule.restart)
        _traded(processes, url, run_ids[0], "before the restart")
        processes.stop("run-1")
        run_ids.append(_start_run(processes, url, 2))
        processes.hold_until(begun + schedule.halt)
        _traded(processes, url, run_ids[1], "before the halt")
        halt = _operator(processes, url, "halt", ["risk", "halt", "--reason", HALT_REASON])
        halted = _picked_up(processes, url, run_ids[1], "halted", halt.ts_event)
        processes.hold_until(max(begun + schedule.reset, time.monotonic() + MIN_HALT_S))
        reset = _operator(processes, url, "reset", ["risk", "reset", "--reason", RESET_REASON])
        resumed = _picked_up(processes, url, run_ids[1], "active", reset.ts_event)
        processes.hold_until(begun + seconds)
        processes.stop("run-2")
        processes.stop("sim")
    finally:
        processes.kill_all()
    hashes = {r.detail.get("settings_sha256") for r in read_audits(url, START_ACTION)}
    if len(hashes) != 1:
        raise RehearsalFailed(
            f"the restart changed the settings: hashes {sorted(map(str, hashes))}"
        )
    fills = [len(fills_of(url, run_id)) for run_id in run_ids]
    if not all(fills):
        raise RehearsalFailed(
            f"the bot must fill in both segments; fills per segment {fills} (runs {run_ids}); "
            f"see {processes.logs['run-1']} and {processes.logs['run-2']}"
        )
    return Rehearsal(
        database_url=url,
        env=env,
        settings_env=settings_env,
        run_ids=run_ids,
        halt_ns=halt.ts_event,
        reset_ns=reset.ts_event,
        halted_ns=halted.ts_event,
        resumed_ns=resumed.ts_event,
        logs=dict(processes.logs),
        fills_per_segment=fills,
        workdir=workdir,
    )


def _start_run(processes: Processes, url: str, segment: int) -> str:
    """Start `cdb run --paper` (segment ``segment``); its run id once its start is audited."""
    processes.start(f"run-{segment}", ["run", "--paper"])

    def started() -> bool:
        try:
            return len(read_audits(url, START_ACTION)) >= segment
        except CdbError:  # the first run has not created the schema yet
            return False

    processes.wait(started, 60, f"the start audit of run {segment}")
    return read_audits(url, START_ACTION)[segment - 1].run_id


def _traded(processes: Processes, url: str, run_id: str, when: str) -> None:
    """Wait (``FILL_TIMEOUT_S`` at most) until run ``run_id`` has a fill: a segment that does not
    trade is no rehearsal. The wall time stretches by that wait."""
    processes.wait(
        lambda: bool(fills_of(url, run_id)), FILL_TIMEOUT_S, f"a fill of run {run_id} {when}"
    )


def _operator(processes: Processes, url: str, name: str, args: list[str]) -> AuditRecord:
    """Run `cdb risk halt|reset` as the operator would; the audit record it wrote."""
    action = HALT_ACTION if name == "halt" else RESET_ACTION
    before = len(read_audits(url, action))
    processes.command(name, [*args, "--actor", ACTOR])
    records = read_audits(url, action)
    if len(records) != before + 1:
        raise RehearsalFailed(f"cdb risk {name} wrote no {action} audit:\n{processes.tail(name)}")
    return records[-1]


def _picked_up(
    processes: Processes, url: str, run_id: str, state: str, since_ns: int
) -> AuditRecord:
    """Wait until run ``run_id`` has written its change to trading state ``state``."""
    found: list[AuditRecord] = []

    def written() -> bool:
        found[:] = [
            record
            for record in read_audits(url, STATE_ACTION)
            if record.run_id == run_id
            and record.detail.get("state") == state
            and record.ts_event >= since_ns
        ]
        return bool(found)

    processes.wait(written, PICK_UP_TIMEOUT_S, f"run {run_id} to take up the {state} state")
    return found[0]


def stop_records(url: str) -> list[AuditRecord]:
    """The ``run_stop`` audits (one per clean stop)."""
    return read_audits(url, STOP_ACTION)


# -- the live rehearsal ---------------------------------------------------------------------------

LIVE_LEVEL_QUOTE = Decimal(1000)
"""Quote value of each level of the simulator's book in the live rehearsal: the bot's market
orders (a few thousand USDT) sweep several levels, so each fills in several parts (one venue
trade, one stored fill per level)."""


@dataclass(frozen=True)
class LiveRehearsal:
    """What a live rehearsal left: its store (``settings.database_url``) and what happened."""

    database_url: str
    settings: Settings
    run_id: str
    accepted_then_5xx: str
    """The client order id of the order MEXC booked but answered 503 for."""
    trades_per_order: dict[str, int]
    """Venue trades (= stored fills) per client order id."""
    venue_statuses: dict[str, str]
    """Each venue order's final status, by client order id."""
    counters: dict[str, int]
    """The live execution client's counters (``outcome_unknown``, ``resolved_by_query`` …)."""
    log: Path
    """cdb's log lines of the run at INFO (``cdb_cli.*``), e.g. the placer's warning
    "MEXC did not confirm order … asking for it, never resending"."""
    workdir: Path


async def live_rehearsal(
    workdir: Path,
    *,
    entry: Literal["market", "limit"] = "market",
    level_quote: Decimal = LIVE_LEVEL_QUOTE,
    **overrides: Any,
) -> LiveRehearsal:
    """The live loop in this process against the MEXC simulator: a thin book (``level_quote``
    per level), the first order placement booked but answered 503 (``accept_then_5xx``), and a
    market walk down, up (the buy) and down (the exit). Waits until both are filled at the venue
    and booked, stops the run, and checks that the store matches the venue
    (``live_testkit.assert_store_matches_the_venue``).

    ``entry="market"``: the buy and the exit are MARKET orders that sweep several levels at once,
    so each fills in several parts (one venue trade each) and goes FILLED in one step.
    ``entry="limit"``: the buy is a LIMIT order (CDB_LIVE_ENTRY_ORDER=limit) that rests; the walk
    then trades through its price step by step, one level a step, so MEXC reports it
    PARTIALLY_FILLED and then FILLED; the exit is a MARKET order. ``overrides`` are settings."""
    from live_testkit import account_of, live_settings

    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    if entry == "limit":
        overrides = {"live_entry_order": "limit", "live_limit_timeout_seconds": 120} | overrides
    # in the rehearsal's folder, not the user data dir (a module-scoped fixture runs before the
    # per-test isolation of tests/conftest.py)
    overrides = {"backup_dir": workdir / "backups", "spill_dir": workdir / "unsaved"} | overrides
    with _without_cdb_variables():  # this process's CDB_* must not change the rehearsal
        settings = live_settings(workdir, **overrides)
    log = workdir / "live.log"
    with _logged_to(log):
        server, runtime, counters = await _live_run(settings, level_quote, entry)
    account = account_of(server)
    orders = sorted(account.orders.values(), key=lambda order: order.time_ms)
    trades: dict[str, int] = {}
    for trade in account.trades:
        name = str(trade["clientOrderId"])
        trades[name] = trades.get(name, 0) + 1
    if not any(count > 1 for count in trades.values()):
        raise RehearsalFailed(f"no order filled in parts: trades per order {trades}")
    return LiveRehearsal(
        database_url=settings.database_url,
        settings=settings,
        run_id=runtime.run_id,
        accepted_then_5xx=str(orders[0].client_order_id),
        trades_per_order=trades,
        venue_statuses={str(o.client_order_id): o.status for o in orders},
        counters=counters,
        log=log,
        workdir=workdir,
    )


async def _live_run(
    settings: Settings, level_quote: Decimal, entry: str
) -> tuple[Any, Any, dict[str, int]]:
    """Run the live loop through the walk; the (stopped) simulator, the loop, the client's
    counters."""
    from live_testkit import assert_store_matches_the_venue, live_run, round_trip_booked, sim_config

    from cdb_cli.adapters.mexc.sim.exchange import SimExchange
    from cdb_cli.adapters.mexc.sim.server import SimServer

    async with SimServer(SimExchange(sim_config(level_quote=level_quote))) as server:
        store = open_store(settings, create_if_new=True)
        try:
            async with live_run(settings, server, store) as (runtime, _stop, _task):
                server.exchange.faults.update({"accept_then_5xx": 1})
                await (_walk_limit_entry(server) if entry == "limit" else _walk(server))
                await round_trip_booked(store, server)
                client: Any = getattr(runtime.venue, "client", None)
                counters = dict(client.counters) if client is not None else {}
            if server.exchange.faults.accept_then_5xx:
                raise RehearsalFailed("no order was placed while accept_then_5xx was armed")
            assert_store_matches_the_venue(store, server)
        finally:
            store.close()
    return server, runtime, counters


@contextmanager
def _without_cdb_variables() -> Iterator[None]:
    saved = {name: value for name, value in os.environ.items() if name.startswith("CDB_")}
    for name in saved:
        del os.environ[name]
    try:
        yield
    finally:
        os.environ.update(saved)


@contextmanager
def _logged_to(path: Path) -> Iterator[None]:
    """cdb's log records (``cdb_cli.*``, INFO and up) also go to ``path`` meanwhile."""
    logger = logging.getLogger("cdb_cli")
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    level = logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        handler.close()


async def _walk(server: Any) -> None:
    from live_testkit import MOVES, walk

    await walk(server, MOVES)


async def _walk_limit_entry(server: Any) -> None:
    """Down, then up until the limit buy rests at MEXC; then through its price one level a step
    until it has filled (PARTIALLY_FILLED first); then down for the exit."""
    from live_testkit import MOVES, SYMBOL, account_of, walk
    from market_testkit import eventually

    resting: list[Any] = []
    walked = 0
    while not resting and walked < len(MOVES):
        await walk(server, [MOVES[walked]])
        walked += 1
        resting = [o for o in account_of(server).orders.values() if o.is_open]
    if not resting:
        raise RehearsalFailed("the limit buy never rested at the venue")
    (order,) = resting
    while order.is_open:
        before: Decimal = order.executed_qty

        def filled_more(before: Decimal = before) -> bool:
            return bool(order.executed_qty > before)

        await server.step({SYMBOL: order.price - Decimal("0.01")})
        await eventually(filled_more, what="a part of the limit buy")
        await asyncio.sleep(0.55)  # a bar each: the parts reach the bot one by one
    await walk(server, [move for move in MOVES[walked:] if move < 0] or [-2] * 6)


# -- fixtures -------------------------------------------------------------------------------------

Scope = Literal["session", "package", "module", "class", "function"]


def paper_rehearsal_fixture(seconds: float = 600, scope: Scope = "module") -> Any:
    """A pytest fixture (module-scoped by default) giving one :class:`Rehearsal` of ``seconds``,
    done once for all the module's tests::

        paper = paper_rehearsal_fixture(600)

        def test_parity_explains_every_difference(paper: Rehearsal) -> None: ...
    """
    import pytest

    @pytest.fixture(scope=scope)
    def paper(tmp_path_factory: pytest.TempPathFactory) -> Rehearsal:
        return paper_rehearsal(tmp_path_factory.mktemp("paper-rehearsal"), seconds)

    return paper


def live_rehearsal_fixture(
    entry: Literal["market", "limit"] = "market", scope: Scope = "module"
) -> Any:
    """A pytest fixture (module-scoped by default) giving one :class:`LiveRehearsal`."""
    import pytest

    @pytest.fixture(scope=scope)
    def live(tmp_path_factory: pytest.TempPathFactory) -> LiveRehearsal:
        workdir = tmp_path_factory.mktemp(f"live-rehearsal-{entry}")
        return asyncio.run(live_rehearsal(workdir, entry=entry))

    return live
