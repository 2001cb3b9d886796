"""Done-when of issue 28 (webhooks): ``cdb run --paper --feed sim`` with a receiver of each format
on 127.0.0.1, halted by ``cdb risk halt``: each receiver gets one well-formed halt message, a
receiver that answers 500 is tried again, and one that hangs holds up neither the others, nor
the loop, nor the stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from market_testkit import free_port, wait_until
from webhook_testkit import Post, Receiver

from cdb_cli.kernel import open_store
from cdb_cli.runtime.lifecycle import START_ACTION
from cdb_cli.settings import Settings

SYMBOL = "BTCUSDT"
TOKEN = "HooKT0kenZXCVBNMasdfghjkl987"
TITLE = "cdb circuit breaker: trading halted"
REASON = "webhook drill"


def _started(url: str) -> bool:
    try:
        store = open_store(Settings(database_url=url))
    except Exception:  # the run creates the database itself
        return False
    try:
        return any(record.action == START_ACTION for record in store.audits())
    finally:
        store.close()


def _market_events(port: int) -> float:
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return 0.0
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("market_events_total{")
    )


def _halts(receiver: Receiver, title: Callable[[Post], str]) -> list[Post]:
    return [post for post in receiver.posts if title(post) == TITLE]


@pytest.mark.slow
def test_a_halt_in_cdb_run_reaches_every_webhook_once(
    tmp_path: Path, webhook_receiver: Callable[..., Receiver]
) -> None:
    receivers = {fmt: webhook_receiver() for fmt in ("slack", "discord", "telegram", "ntfy")}
    receivers["json"] = webhook_receiver()
    flaky, hanging = webhook_receiver(fail=1), webhook_receiver(hang=True)
    entries = [
        f"json:{hanging.base}/slow/{TOKEN}",  # first: it must not hold up the others
        f"slack:{receivers['slack'].base}/services/T1/B2/{TOKEN}",
        f"discord:{receivers['discord'].base}/api/webhooks/9/{TOKEN}",
        f"telegram:{receivers['telegram'].base}/bot42:{TOKEN}/sendMessage?chat_id=-1001",
        f"ntfy:{receivers['ntfy'].base}/cdb-{TOKEN}",
        f"json:{receivers['json'].base}/alerts?token={TOKEN}",
        f"json:{flaky.base}/flaky/{TOKEN}",
    ]
    url = f"sqlite:///{tmp_path / 'run.db'}"
    port = free_port()
    env = {
        **os.environ,
        "CDB_DATABASE_URL": url,
        "CDB_HTTP_PORT": str(port),
        "NO_COLOR": "1",
        "CDB_WEBHOOK_URLS": ",".join(entries),
    }
    cdb = str(Path(sys.executable).parent / "cdb")
    log = tmp_path / "run.log"
    with log.open("w") as err:
        process = subprocess.Popen(
            [cdb, "run", "--paper", "--feed", "sim", "--symbols", SYMBOL],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=err,
            text=True,
        )
        try:

            def running(check: Callable[[], bool]) -> Callable[[], bool]:
                def probe() -> bool:
                    assert process.poll() is None, log.read_text()
                    return check()

                return probe

            wait_until(running(lambda: _started(url)), 60, "the run's start")
            wait_until(running(lambda: _market_events(port) > 0), 60, "market events")
            halted = subprocess.run(
                [cdb, "risk", "halt", "--reason", REASON, "--actor", "ops@desk"],
                env=env,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert halted.returncode == 0, halted.stderr
            for receiver in receivers.values():
                receiver.wait(1, timeout_s=30)
            # the good ones were not held up by the hanging one (listed first): its first
            # attempt has not even timed out yet (5 s), so it has not been tried a second time
            assert len(hanging.posts) <= 1
            hanging.wait(1)
            flaky.wait(2, timeout_s=30)  # 500, then tried again after 1 s
            # while the hanging receiver holds its POST, the loop goes on taking market data
            before = _market_events(port)
            wait_until(running(lambda: _market_events(port) > before), 10, "more market events")
            process.send_signal(signal.SIGTERM)
            stopping = time.monotonic()
            process.wait(timeout=30)
            stop_s = time.monotonic() - stopping
        finally:
            process.kill()
    output = log.read_text()
    assert process.returncode == 0, output
    # the queues get 5 s at most (the hanging one takes them all), the stop itself a few
    assert stop_s < 15, f"the stop took {stop_s:.1f} s"
    run_id = json.loads(output.splitlines()[-1])["run_id"]

    [slack] = _halts(receivers["slack"], lambda p: p.json()["text"].split("\n")[0].strip("*"))
    assert slack.path == f"/services/T1/B2/{TOKEN}"
    text = slack.json()["text"]
    assert text.startswith(f"*{TITLE}*\nRun {run_id} halted trading: ")
    assert REASON in text

    [discord] = _halts(
        receivers["discord"], lambda p: p.json()["content"].split("\n")[0].strip("*")
    )
    assert set(discord.json()) == {"content", "allowed_mentions"}
    assert REASON in discord.json()["content"]
    assert len(discord.json()["content"]) <= 2000

    [telegram] = _halts(receivers["telegram"], lambda p: p.json()["text"].split("\n")[0])
    assert telegram.path == f"/bot42:{TOKEN}/sendMessage"
    assert telegram.json()["chat_id"] == "-1001"
    assert REASON in telegram.json()["text"]

    [ntfy] = _halts(receivers["ntfy"], lambda p: p.headers["Title"])
    assert (ntfy.headers["Priority"], ntfy.headers["Tags"]) == (
        "5",
        "rotating_light,cdb,breaker_halted",
    )
    assert ntfy.text.startswith(f"Run {run_id} halted trading: ")

    [plain] = _halts(receivers["json"], lambda p: p.json()["title"])
    document = plain.json()
    assert (document["event"], document["severity"], document["run_id"]) == (
        "breaker_halted",
        "critical",
        run_id,
    )
    assert REASON in document["text"]
    assert document["ts"].endswith("Z")

    assert flaky.answered[:2] == [500, 200]
    assert len(_halts(flaky, lambda p: p.json()["title"])) == 2  # one message, tried twice
    assert TOKEN not in output
