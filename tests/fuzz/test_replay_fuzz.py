"""Fuzzing ``cdb replay``'s input (issue 22): seeded byte-level mutations of the real data in
``tests/data`` in every accepted format, plain and gzipped, must end in a report or in the
documented one-line error (``BadDataFile``, ``UnknownReplayFormat``), never a traceback.

Each case goes through the service's loader (:func:`load_replay_data`, with and without
``skip_bad_rows``); the first files of each format that load also through the whole replay
(:func:`run_replay`), and every 25th file through the CLI. Seeded gzip bombs (``bomb(kind, seed)``)
check the decompression cap: over it is the cap's error, under it never. Sizes:
``cases(ci, full)`` (``CDB_FUZZ=full`` for the full run). A failure names the format and the
seed: ``mutated(kind, seed)`` rebuilds the file.
"""

from __future__ import annotations

import gzip
import json
import random
import traceback
from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest
from cdb_testkit import CANDLES, TRADES, require_data
from fuzz_testkit import cases, mutate
from typer.testing import Result

from cdb_cli.adapters import marketdata_files
from cdb_cli.adapters.marketdata_files import BadDataFile, gzip_cap
from cdb_cli.errors import ExitCode
from cdb_cli.services.replay import (
    ReplayRequest,
    UnknownReplayFormat,
    load_replay_data,
    run_replay,
)
from cdb_cli.settings import Settings

pytestmark = pytest.mark.fuzz

ROWS = 200
"""Rows of the real files each seed file keeps: mutations hit the structure as often as the
values, and a case stays fast (the full run reads thousands of files)."""
KINDS = ("bars-json", "mexc-klines", "trades-json", "bars-csv", "trades-csv")
EXPECTED = (BadDataFile, UnknownReplayFormat)
REPLAYS = cases(ci=10, full=100)  # per format: files that loaded, replayed through the pipeline
CLI_EVERY = 25  # every 25th also through `cdb replay`


@cache
def seed_file(kind: str) -> bytes:
    """The first ``ROWS`` rows of the real candles or trades, written in ``kind``'s format."""
    candles = json.loads(require_data(CANDLES).read_bytes())[:ROWS]
    trades = json.loads(gzip.decompress(require_data(TRADES).read_bytes()))[:ROWS]
    if kind == "bars-json":
        return json.dumps(candles).encode()
    if kind == "mexc-klines":
        klines = [[r[0], *map(str, r[1:]), r[0] + 59_999, str(r[4] * r[5])] for r in candles]
        return json.dumps(klines).encode()
    if kind == "trades-json":
        return json.dumps(trades).encode()
    if kind == "bars-csv":
        lines = ["timestamp,open,high,low,close,volume", *(",".join(map(str, r)) for r in candles)]
    else:
        lines = ["timestamp,side,price,amount", *(f"{t[0]},{t[3]},{t[4]},{t[5]}" for t in trades)]
    return ("\n".join(lines) + "\n").encode()


def mutated(kind: str, seed: int) -> tuple[str, bytes]:
    """Case ``seed`` of ``kind``: (file name, bytes). Even seeds are plain files; odd ones are
    gzipped, their data mutated before compressing, and every other one the .gz itself too."""
    rng = random.Random(f"{kind}:{seed}")
    data = mutate(seed_file(kind), rng)
    suffix = ".csv" if kind.endswith("csv") else ".json"
    if seed % 2 == 0:
        return f"BTCUSDT-1m{suffix}", data
    data = gzip.compress(data, compresslevel=1, mtime=0)
    if seed % 4 == 3:
        data = mutate(data, rng)
    return f"BTCUSDT-1m{suffix}.gz", data


def unexpected(error: BaseException, kind: str, seed: int) -> str:
    where = "".join(traceback.format_exception(error)[-3:]).strip()
    return f"{kind} seed {seed}: {type(error).__name__}: {where}"


def through_service(path: Path, kind: str, seed: int, outcomes: dict[str, int]) -> list[str]:
    """Load the file with and without skipping; the first ``REPLAYS`` that load are replayed."""
    failures = []
    loaded = False
    for skip in (False, True):
        request = ReplayRequest(data=path, symbol="BTCUSDT", skip_bad_rows=skip, trace=False)
        try:
            load_replay_data(request)
            outcomes["loaded"] += 1
            loaded = True
        except EXPECTED as e:
            outcomes["refused"] += 1
            if "\n" in e.message:
                failures.append(f"{kind} seed {seed}: not one line: {e.message!r}")
        except Exception as e:
            failures.append(unexpected(e, kind, seed))
    if loaded and outcomes["replayed"] < REPLAYS:
        request = ReplayRequest(data=path, symbol="BTCUSDT", skip_bad_rows=True, trace=False)
        try:
            run_replay(Settings(), request)
            outcomes["replayed"] += 1
        except EXPECTED:
            pass
        except Exception as e:
            failures.append(unexpected(e, kind, seed))
    return failures


def through_cli(cdb: Callable[..., Result], path: Path, kind: str, seed: int) -> list[str]:
    """``cdb replay FILE --json`` with and without ``--skip-bad-rows``: exit 0, 1 with one line
    naming the file, or 2 (unknown format); never an exception out of the command."""
    failures = []
    for args in ([], ["--skip-bad-rows"]):
        result = cdb("replay", str(path), *args, "--json")
        case = f"{kind} seed {seed} cdb replay {args}"
        crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
        if crashed or "Traceback" in result.output:
            failures.append(f"{case}: {result.exception!r} {result.output}")
        elif result.exit_code not in (0, ExitCode.FAILURE, ExitCode.USAGE):
            failures.append(f"{case}: exit {result.exit_code}")
        elif result.exit_code == ExitCode.FAILURE and not (
            result.stderr.startswith(f"Error: {path}: ") and result.stderr.count("\n") == 1
        ):
            failures.append(f"{case}: not one line naming the file: {result.stderr!r}")
    return failures


@pytest.mark.parametrize("kind", KINDS)
def test_mutated_files_load_or_fail_with_the_documented_error(
    kind: str, tmp_path: Path, cdb: Callable[..., Result]
) -> None:
    failures: list[str] = []
    outcomes = {"loaded": 0, "refused": 0, "replayed": 0}
    for seed in range(cases(ci=150, full=1_000)):  # x 5 kinds: 750 files (CI), 5,000 (full)
        name, data = mutated(kind, seed)
        path = tmp_path / name
        path.write_bytes(data)
        failures += through_service(path, kind, seed, outcomes)
        if seed % CLI_EVERY == 0:
            failures += through_cli(cdb, path, kind, seed)
    assert not failures, f"{len(failures)} unexpected outcomes, first: " + "\n".join(failures[:5])
    # The mutations are not all fatal: a fuzz run that only ever fails to load tests nothing.
    assert outcomes["loaded"] > 0, outcomes
    assert outcomes["refused"] > 0, outcomes
    assert outcomes["replayed"] > 0, outcomes


BOMB_FLOOR, BOMB_RATIO = 16 * 1024, 20
"""The decompression cap in the bomb test (256 MiB and 100 times in use): a real seed file
compresses 2-3 times, so a bomb of a few times the floor is over the cap or under it."""
BOMB_REPEATS = 256 * 1024
OVER_CAP = "of the decompressed data: over the cap of"


def bomb(kind: str, seed: int) -> tuple[bytes, int | None]:
    """Bomb ``seed`` of ``kind``: the seed file with a piece of it repeated into up to
    ``BOMB_REPEATS`` bytes, gzipped in one to seven members, every fourth one truncated;
    (the .gz, its decompressed size or None when truncated)."""
    rng = random.Random(f"bomb:{kind}:{seed}")
    data = seed_file(kind)
    start = rng.randrange(len(data))
    piece = data[start : start + rng.randint(1, 256)]
    at = rng.randrange(len(data) + 1)
    data = data[:at] + piece * rng.randint(1, BOMB_REPEATS // len(piece)) + data[at:]
    cuts = sorted(rng.randrange(len(data) + 1) for _ in range(rng.choice([0, 0, 1, 6])))
    parts = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    blob = b"".join(
        gzip.compress(part, compresslevel=rng.choice([1, 9]), mtime=0) for part in parts
    )
    if seed % 4 == 3:
        return blob[: rng.randrange(2, len(blob))], None
    return blob, len(data)


@pytest.mark.parametrize("kind", KINDS)
def test_gzip_bombs_fail_at_the_cap_and_only_over_it(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(marketdata_files, "GZIP_MIN_CAP", BOMB_FLOOR)
    monkeypatch.setattr(marketdata_files, "GZIP_MAX_RATIO", BOMB_RATIO)
    failures: list[str] = []
    outcomes = {"loaded": 0, "capped": 0, "refused": 0}
    path = tmp_path / f"BTCUSDT-1m.{'csv' if kind.endswith('csv') else 'json'}.gz"
    for seed in range(cases(ci=20, full=400)):  # x 5 kinds: 100 bombs (CI), 2,000 (full)
        blob, size = bomb(kind, seed)
        path.write_bytes(blob)
        request = ReplayRequest(data=path, symbol="BTCUSDT", skip_bad_rows=True, trace=False)
        over = size is not None and size > gzip_cap(len(blob))
        try:
            load_replay_data(request)
            outcomes["loaded"] += 1
            capped = False
        except EXPECTED as e:
            capped = OVER_CAP in e.message
            outcomes["capped" if capped else "refused"] += 1
            if "\n" in e.message or not e.message.startswith(f"{path}: "):
                failures.append(f"{kind} bomb {seed}: not one line naming the file: {e.message!r}")
        except Exception as e:
            failures.append(unexpected(e, kind, seed))
            continue
        if size is not None and capped != over:
            failures.append(f"{kind} bomb {seed}: {size:,} bytes, capped {capped}, over {over}")
    assert not failures, f"{len(failures)} unexpected outcomes, first: " + "\n".join(failures[:5])
    assert outcomes["capped"] > 0, outcomes
    assert outcomes["loaded"] + outcomes["refused"] > 0, outcomes
