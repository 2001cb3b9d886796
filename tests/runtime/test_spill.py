"""What the store would not take at a stop: spilled 0600 and fsynced to the first folder that takes
it (a full disk falls back to the next), loaded back once into a real store at the next start;
when no folder takes it, the error names every order and fill that was lost."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest
from market_testkit import fill, trade

from cdb_cli.engine.events import Topic, TradeTick
from cdb_cli.engine.records import AuditRecord, Mode, OrderRecord
from cdb_cli.kernel import open_store
from cdb_cli.runtime.spill import SPILL_LOADED_ACTION, Spill, load_spills, spill
from cdb_cli.settings import Settings

T0 = 1_704_067_200_000_000_000


def order(client_order_id: str = "o1") -> OrderRecord:
    return OrderRecord(
        client_order_id=client_order_id,
        decision_id="d1",
        symbol="BTCUSDT",
        side="BUY",
        order_type="MARKET",
        quote_amount=Decimal(100),
        status="FILLED",
        ts_created=T0,
        ts_updated=T0,
        mode=Mode.PAPER,
    )


def batch(fills: int = 2) -> Spill:
    return Spill(
        events=[(Topic.MARKET_DATA, trade(T0 + i, "100", event_id=f"t{i}")) for i in range(3)],
        orders=[order()],
        fills=[fill(fill_id=f"f{i}", ts=T0 + i) for i in range(fills)],
        audits=[
            AuditRecord(
                ts_event=T0,
                action="trading_state",
                actor="cdb run",
                run_id="p1",
                detail={"state": "halted", "reason": "test"},
            )
        ],
    )


def store_at(tmp_path: Path) -> tuple[Settings, object]:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'spill.db'}")
    return settings, open_store(settings, create_if_new=True)


def test_a_spill_is_loaded_back_once_and_idempotently(tmp_path: Path) -> None:
    folder = tmp_path / "unsaved"
    path = spill(batch(), "p1", [folder])
    assert path == folder / "cdb-unsaved-p1.jsonl"
    assert path.stat().st_mode & 0o777 == 0o600
    assert folder.stat().st_mode & 0o777 == 0o700
    _, store = store_at(tmp_path)
    store.save_batch(  # one fill was stored before the store went down: not doubled
        events=[], orders=[order()], fills=[fill(fill_id="f0", ts=T0)], positions=[], audits=[]
    )
    try:
        assert load_spills(store, [folder], actor="ops", run_id="p2", now_ns=T0 + 10) == 1
        assert load_spills(store, [folder], actor="ops", run_id="p2", now_ns=T0 + 20) == 0
        assert sorted(f.fill_id for f in store.fills()) == ["f0", "f1"]
        assert [o.client_order_id for o in store.orders()] == ["o1"]
        assert sorted(e.event_id for e in store.events(TradeTick)) == ["t0", "t1", "t2"]
        (loaded,) = store.audits(action=SPILL_LOADED_ACTION)
        assert loaded.detail == {
            "file": str(path),
            "events": "3",
            "orders": "1",
            "fills": "2",
            "audits": "1",
            "skipped_lines": "0",
        }
        assert [a.detail["state"] for a in store.audits(action="trading_state")] == ["halted"]
    finally:
        store.close()
    assert not path.exists()
    assert path.with_name("cdb-unsaved-p1.jsonl.loaded").exists()


def test_a_line_cut_short_is_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = spill(batch(), "p1", [tmp_path])
    assert path is not None
    with path.open("ab") as handle:
        handle.write(b'{"fill": {"fill_id": "f9", "client_or')  # the crash cut it here
    _, store = store_at(tmp_path)
    try:
        with caplog.at_level(logging.WARNING):
            assert load_spills(store, [tmp_path], actor="ops", run_id="p2", now_ns=T0) == 1
        assert sorted(f.fill_id for f in store.fills()) == ["f0", "f1"]
        (loaded,) = store.audits(action=SPILL_LOADED_ACTION)
        assert loaded.detail["skipped_lines"] == "1"
    finally:
        store.close()
    assert f"{path.with_name(path.name + '.loading-' + str(os.getpid()))} line 8 skipped" in (
        caplog.text
    )


def test_a_folder_that_cannot_take_it_falls_back_to_the_next(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the spill folder should be")
    path = spill(batch(), "p1", [blocked / "unsaved", tmp_path / "fallback"])
    assert path == tmp_path / "fallback" / "cdb-unsaved-p1.jsonl"


def test_when_no_folder_takes_it_the_error_names_what_was_lost(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the spill folder should be")
    with caplog.at_level(logging.ERROR):
        assert spill(batch(), "p1", [blocked / "a", blocked / "b"]) is None
    (record,) = caplog.records
    message = record.getMessage()
    assert message.startswith("Lost what the store did not take, as no spill folder took it")
    assert "1 order states (orders o1), 2 fills (fills f0, f1)" in message


_DISK_FULL_CHILD = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    sys.path[:0] = [{tests!r}, {kits!r}]
    from test_spill import batch
    from cdb_cli.runtime.spill import spill

    full, fallback = Path({full!r}), Path({fallback!r})
    path = spill(batch(fills=400), "p1", [full, fallback])
    cut = full / "cdb-unsaved-p1.jsonl"  # what the full disk took before ENOSPC
    print(json.dumps({{"path": str(path), "cut": cut.stat().st_size if cut.exists() else -1,
                      "whole": path.stat().st_size}}))
    """
)


def test_a_full_disk_falls_back_and_loses_no_fill(tmp_path: Path) -> None:
    """A real full disk: a 16 KiB tmpfs in a mount namespace of the child's own (the host's
    mounts are never touched) takes part of the spill file, then ENOSPC; the fallback folder
    takes all of it, and all 400 fills load back."""
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs unshare and root")
    full = tmp_path / "small-disk"
    full.mkdir()
    fallback = tmp_path / "fallback"
    script = _DISK_FULL_CHILD.format(
        tests=str(Path(__file__).parent),
        kits=str(Path(__file__).parents[1]),
        full=str(full),
        fallback=str(fallback),
    )
    result = subprocess.run(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            f'mount -t tmpfs -o size=16k tmpfs "{full}" && exec "$0" -c "$1"',
            sys.executable,
            script,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    child = json.loads(result.stdout)
    assert child["path"] == str(fallback / "cdb-unsaved-p1.jsonl")
    assert 0 <= child["cut"] <= 16 * 1024 < child["whole"]  # the small disk ran full
    assert not (full / "cdb-unsaved-p1.jsonl").exists()  # the tmpfs was the child's alone
    _, store = store_at(tmp_path)
    try:
        assert load_spills(store, [full, fallback], actor="ops", run_id="p2", now_ns=T0) == 1
        assert len(store.fills()) == 400
    finally:
        store.close()
