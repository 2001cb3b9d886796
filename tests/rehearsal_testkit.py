"""Rehearsals: real runs that leave real stores, for the tests that examine a finished run
(``cdb parity RUN``, reports). ``pythonpath`` in pyproject.toml makes this module importable.

* :func:`paper_rehearsal`: what an operator does, with real processes. `cdb sim-exchange` moves
  its market on its own; `cdb run --paper` trades against it (fast strategy settings, 1-s bars)
  into a SQLite store; after 40 % of the time the run is stopped with SIGTERM and started again
  with the same environment; in the second segment `cdb risk halt` and, 15 s or more later,
  `cdb risk reset` are run as commands and the rehearsal waits until the run has taken each up
  (its ``trading_state`` audit). It raises :class:`RehearsalFailed` when a process fails or the
  bot did not fill in both segments.
* the live rehearsal is in ``live_rehearsal_testkit.py``.

Each keeps its files in the folder it is given (a test's ``tmp_path``, or
``tmp_path_factory.mktemp`` for a module-scoped fixture: a 10-minute rehearsal done once).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
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
    "Rehearsal",
    "RehearsalFailed",
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
