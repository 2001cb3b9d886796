"""The operator's and the breaker's acts in a running loop: one implementation for every loop.

Shared by the trading loop (:class:`~cdb_cli.runtime.loop.TradingLoop`, paper and live) and the
``risk`` component, which both hold a :class:`~cdb_cli.engine.pipeline.TradingPipeline`:

* **Resume** (:meth:`OperatorControl.resume`): at start, a halt (or today's reduction) in the
  store is taken up again, and the audited halts and resets already there are marked seen.
* **Pick-up** (:meth:`OperatorControl.pick_up`): an audited ``cdb risk halt`` written since
  halts new entries without a restart (with ``--flatten`` it starts selling every position), an
  audited ``cdb risk reset`` resumes trading. How often the store is read, and where the
  flatten's exits go out, is the loop's (the one process at each flush, ``risk`` at each
  symbol's next closed bar).
* **State changes** (:meth:`OperatorControl.new_state_changes`,
  :meth:`OperatorControl.alert_new_halts`): the pipeline's trading-state changes not yet written,
  and a mail for each new halt.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from cdb_cli.engine.errors import CdbError
from cdb_cli.engine.halts import describe_reset
from cdb_cli.engine.records import AuditRecord
from cdb_cli.engine.runs import (
    HALT_ACTION,
    RESET_ACTION,
    OperatorActions,
    halt_reason,
    resumed_state,
    trading_status,
)
from cdb_cli.runtime.flatten import Flatten
from cdb_cli.runtime.lifecycle import run_record
from cdb_cli.runtime.watch import Alert, halt_alerts, send_alert

if TYPE_CHECKING:
    from cdb_cli.engine.pipeline import TradingPipeline
    from cdb_cli.engine.ports.store import Store

__all__ = ["OperatorControl", "read_operator_audits"]

logger = logging.getLogger(__name__)


async def read_operator_audits(store: Store) -> tuple[list[AuditRecord], list[AuditRecord]]:
    """The audited halts and resets in the store (two blocking reads, in a worker thread)."""
    halts = await asyncio.to_thread(store.audits, action=HALT_ACTION)
    resets = await asyncio.to_thread(store.audits, action=RESET_ACTION)
    return halts, resets


class OperatorControl:
    """Which operator acts a loop has applied, its flatten under way, and which trading-state
    changes it has written and mailed. ``who`` names the loop in logs and mails (``Run p…``);
    ``flatten_note`` says where a flatten's exits go out."""

    def __init__(
        self,
        symbols: Sequence[str],
        *,
        who: str,
        run_id: str,
        alert: Alert | None,
        flatten_note: str = "flattening every position",
    ) -> None:
        self.who = who
        self.flatten = Flatten(symbols)
        self.actions = OperatorActions(set(), set())
        self._alert = alert
        self._flatten_note = flatten_note
        self._written = 0
        self._alerted = 0
        self._run_id = run_id
        self._audit_writes: set[asyncio.Task[None]] = set()

    async def resume(self, pipeline: TradingPipeline, store: Store, now_ns: int) -> None:
        """Take up a stored halt (or today's reduction) again — already in the store and already
        mailed when it happened — and mark the audited halts and resets there seen."""
        status = await asyncio.to_thread(trading_status, store)
        state = resumed_state(status, now_ns)
        if state is not None:
            pipeline.set_trading_state(state, now_ns, f"resumed: {status.reason}")
            self._written = self._alerted = len(pipeline.stats.state_changes)
        halts, resets = await read_operator_audits(store)
        self.actions = OperatorActions.seen(halts, resets)  # trading_status weighed them

    def pick_up(
        self,
        pipeline: TradingPipeline,
        halts: Sequence[AuditRecord],
        resets: Sequence[AuditRecord],
        now_ns: int,
    ) -> None:
        """Apply the audited halts and resets not seen yet, at ``now_ns``. A reset that comes
        while trading is not halted (a halt and its reset between two reads) is moot: it is
        marked seen, so it cannot end a later halt."""
        for record in self.actions.apply_halts(pipeline, halts, resets, now_ns):
            reason = record.detail.get("reason", "")
            self.halted(reason, actor=record.actor, flatten=record.detail.get("flatten") == "yes")
        reset = self.actions.apply_resets(pipeline, resets, now_ns)
        if reset is not None:
            logger.warning("Trading resumes: %s", describe_reset(reset))

    def halted(self, reason: str, *, actor: str, flatten: bool) -> None:
        """Say that trading halted (the pipeline has done it); with ``flatten`` start selling
        every position."""
        note = f"; {self._flatten_note}" if flatten else ""
        logger.warning("%s %s%s", self.who, halt_reason(reason, actor), note)
        if flatten:
            self.flatten.start(reason)

    def halt(
        self, pipeline: TradingPipeline, now_ns: int, reason: str, *, actor: str, flatten: bool
    ) -> None:
        """The kill switch, in process: no new entry from now on; with ``flatten`` every
        position is sold (now and at each flush until flat). Writes no audit record: the caller
        did (``cdb risk halt``) or :meth:`halt_now` does."""
        pipeline.halt(now_ns, halt_reason(reason, actor))
        self.halted(reason, actor=actor, flatten=flatten)
        self.flatten.step(pipeline, now_ns)

    def halt_now(
        self,
        pipeline: TradingPipeline | None,
        store: Store,
        now_ns: int,
        reason: str,
        *,
        via: str,
    ) -> None:
        """Halt at once (a signal handler's call: SIGUSR1), without a flatten, and write the
        audit record (action ``risk_halt``) in the background. Before the start (no pipeline
        yet) only the record: the start's restore takes it up."""
        detail = {"reason": reason, "flatten": "no", "via": via}
        record = run_record(HALT_ACTION, self._run_id, now_ns, detail)
        if pipeline is not None:
            self.actions.halts_seen.add(record.ts_event)
            self.halt(pipeline, now_ns, reason, actor=record.actor, flatten=False)
        task = asyncio.get_running_loop().create_task(_write_audit(store, record))
        self._audit_writes.add(task)
        task.add_done_callback(self._audit_writes.discard)

    def new_state_changes(self, pipeline: TradingPipeline) -> list[tuple[int, str, str]]:
        """The trading-state changes since the last call (to be written as audit records)."""
        changes = pipeline.stats.state_changes
        new = list(changes[self._written :])
        self._written = len(changes)
        return new

    async def alert_new_halts(self, pipeline: TradingPipeline) -> None:
        """Mail each halt since the last call (a failed mail is a warning, never an error)."""
        changes = pipeline.stats.state_changes
        for subject, body in halt_alerts(changes[self._alerted :], self.who):
            await send_alert(self._alert, subject, body)
        self._alerted = len(changes)


async def _write_audit(store: Store, record: AuditRecord) -> None:
    try:
        await asyncio.to_thread(store.add_audit, record)
    except CdbError as e:
        logger.error("Could not write the %s audit record: %s", record.action, e)
