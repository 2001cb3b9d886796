"""deploy/systemd/cdb.service: a Type=notify unit with a watchdog, a restart policy that does not
retry what cannot heal, and the hardening of issue 27; `systemd-analyze verify` accepts it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "deploy" / "systemd" / "cdb.service"


def sections() -> dict[str, dict[str, list[str]]]:
    """The unit's sections, each key with every value it is given (keys may repeat)."""
    parsed: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    section = ""
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        parsed[section][key].append(value)
    return parsed


def test_it_is_a_notify_service_with_a_watchdog_and_a_sane_restart_policy() -> None:
    service = sections()["Service"]
    assert service["Type"] == ["notify"]
    assert service["NotifyAccess"] == ["main"]
    assert int(service["WatchdogSec"][0]) > 0
    assert service["Restart"] == ["on-failure"]
    assert service["ExecStart"][0].split()[1:] == ["run", "--paper"]
    # a usage error, a bad configuration or a refused live gate (README's exit codes 2, 3, 4)
    # is not retried in a loop
    refused = {int(code) for code in service["RestartPreventExitStatus"][0].split()}
    assert refused == {2, 3, 4}


def test_it_runs_hardened_as_its_own_user() -> None:
    service = sections()["Service"]
    assert service["User"] == ["cdb"]
    assert service["EnvironmentFile"] == ["/etc/cdb/cdb.env"]
    assert service["UMask"] == ["0077"]
    for key in ("NoNewPrivileges", "PrivateTmp", "ProtectHome", "PrivateDevices"):
        assert service[key] == ["yes"], key
    assert service["ProtectSystem"] == ["strict"]
    assert service["ReadWritePaths"] == ["/var/lib/cdb"]
    assert service["StateDirectory"] == ["cdb"]
    assert service["CapabilityBoundingSet"] == [""]


def test_systemd_analyze_verifies_it(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        if os.environ.get("CDB_REQUIRE_SERVICES") == "1":
            pytest.fail("systemd-analyze is not installed")
        pytest.skip("systemd-analyze is not installed here")
    cdb = Path(sys.executable).parent / "cdb"  # verify checks that ExecStart's binary exists
    unit = tmp_path / "cdb.service"
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/cdb", str(cdb)))
    result = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "Unknown key" not in result.stderr, result.stderr
