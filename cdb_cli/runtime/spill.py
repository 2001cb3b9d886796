"""What the store would not take at a stop, kept on disk and loaded back at the next start.

A loop that stops while its store is down retries its last batch for a while
(:meth:`~cdb_cli.runtime.outbox.BatchWriter.finish`), then :func:`spill` appends what is still
unwritten — events as their wire envelope, orders, fills, the trading-state audit records — to
``cdb-unsaved-RUN.jsonl``, one JSON object a line, in the first folder that takes it:
``CDB_SPILL_DIR`` (default: ``unsaved`` in the user data dir), then ``CDB_SPILL_FALLBACK_DIR``
(default: the working directory), so a full disk under one is not the end of it. The file is
created 0600 and fsynced before the loop goes on. When no folder takes it, the error says exactly
what was lost (counts, and the ids of every order and fill).

At the next start, before trading, :func:`load_spills` writes every spill file it finds in those
folders to the store (idempotently: what is stored already is skipped), writes a ``spill_loaded``
audit record for each, and renames the file ``….loaded`` so it is never loaded twice. A line the
crash cut short is skipped with a warning naming the file and line.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from cdb_cli.engine.errors import MalformedEvent
from cdb_cli.engine.events import Event, Topic, decode_event, encode_event
from cdb_cli.engine.records import AuditRecord, FillRecord, OrderRecord

if TYPE_CHECKING:
    from cdb_cli.engine.ports.store import Store
    from cdb_cli.settings import Settings

__all__ = [
    "SPILL_LOADED_ACTION",
    "Spill",
    "load_spills",
    "spill",
    "spill_folders",
]

logger = logging.getLogger(__name__)

SPILL_LOADED_ACTION: Final = "spill_loaded"
_PREFIX = "cdb-unsaved-"


@dataclass
class Spill:
    """One batch the store did not take (or one spill file's contents)."""

    events: list[tuple[Topic, Event]] = field(default_factory=list)
    orders: list[OrderRecord] = field(default_factory=list)
    fills: list[FillRecord] = field(default_factory=list)
    audits: list[AuditRecord] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.events or self.orders or self.fills or self.audits)

    def lines(self) -> Iterable[str]:
        for topic, event in self.events:
            yield json.dumps({"topic": str(topic), "event": encode_event(event).decode()})
        for order in self.orders:
            yield json.dumps({"order": order.model_dump(mode="json")})
        for fill in self.fills:
            yield json.dumps({"fill": fill.model_dump(mode="json")})
        for audit in self.audits:
            yield json.dumps({"audit": audit.model_dump(mode="json")})

    def add_line(self, line: dict[str, Any]) -> None:
        """Take back one line :meth:`lines` wrote (raises on anything else)."""
        if "event" in line:
            self.events.append((Topic(line["topic"]), decode_event(line["event"])))
        elif "order" in line:
            self.orders.append(OrderRecord.model_validate(line["order"]))
        elif "fill" in line:
            self.fills.append(FillRecord.model_validate(line["fill"]))
        elif "audit" in line:
            self.audits.append(AuditRecord.model_validate(line["audit"]))
        else:
            raise ValueError("not a spilled event, order, fill or audit record")

    def describe(self) -> str:
        """What it holds, with the id of every order and fill (for the line that says it was
        lost)."""
        orders = ", ".join(order.client_order_id for order in self.orders) or "none"
        fills = ", ".join(fill.fill_id for fill in self.fills) or "none"
        return (
            f"{len(self.events)} events, {len(self.audits)} audit records, "
            f"{len(self.orders)} order states (orders {orders}), {len(self.fills)} fills "
            f"(fills {fills})"
        )


def spill_folders(settings: Settings) -> list[Path]:
    """Where spill files go, in order of preference (and where a start looks for them)."""
    return [settings.spill_dir, settings.spill_fallback_dir or Path.cwd()]


def spill(batch: Spill, run_id: str, folders: Sequence[Path]) -> Path | None:
    """Append ``batch`` to ``cdb-unsaved-RUN.jsonl`` in the first of ``folders`` that takes all
    of it (created 0700/0600, fsynced); return the file, or None when none did (then the error
    log says exactly what was lost)."""
    data = "".join(line + "\n" for line in batch.lines()).encode()
    failures = []
    for folder in folders:
        path = folder / f"{_PREFIX}{run_id}.jsonl"
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                written = os.write(descriptor, data)
                while written < len(data):
                    written += os.write(descriptor, data[written:])
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
        except OSError as e:
            failures.append(f"{folder}: {e.strerror or type(e).__name__}")
            continue
        return path.resolve()
    logger.error(
        "Lost what the store did not take, as no spill folder took it (%s): %s",
        "; ".join(failures),
        batch.describe(),
    )
    return None


def load_spills(
    store: Store, folders: Sequence[Path], *, actor: str, run_id: str, now_ns: int
) -> int:
    """Write every spill file in ``folders`` to the store (blocking: call it in a worker thread),
    each with a ``spill_loaded`` audit record, and rename it ``….loaded``; return how many files
    were loaded. A file another process is loading (claimed by its rename) is left to it."""
    loaded = 0
    for folder in dict.fromkeys(Path(f).resolve() for f in folders):
        for path in sorted(folder.glob(f"{_PREFIX}*.jsonl")) if folder.is_dir() else []:
            claimed = path.with_name(f"{path.name}.loading-{os.getpid()}")
            try:
                path.rename(claimed)
            except FileNotFoundError:
                continue  # another process claimed it
            batch, skipped = _read(claimed)
            store.save_batch(
                events=[event for _, event in batch.events],
                orders=batch.orders,
                fills=batch.fills,
                positions=[],
                audits=[
                    *batch.audits,
                    AuditRecord(
                        ts_event=now_ns,
                        action=SPILL_LOADED_ACTION,
                        actor=actor,
                        run_id=run_id,
                        detail={
                            "file": str(path),
                            "events": str(len(batch.events)),
                            "orders": str(len(batch.orders)),
                            "fills": str(len(batch.fills)),
                            "audits": str(len(batch.audits)),
                            "skipped_lines": str(skipped),
                        },
                    ),
                ],
            )
            claimed.rename(path.with_name(f"{path.name}.loaded"))
            logger.warning("Loaded %s into the store: %s", path, batch.describe())
            loaded += 1
    return loaded


def _read(path: Path) -> tuple[Spill, int]:
    batch, skipped = Spill(), 0
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                batch.add_line(json.loads(raw))
            except (ValueError, TypeError, KeyError, RecursionError, MalformedEvent) as e:
                skipped += 1
                logger.warning(
                    "%s line %d skipped (cut short or not a spill line): %s",
                    path,
                    number,
                    type(e).__name__,
                )
    return batch, skipped
