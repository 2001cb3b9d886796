"""``cdb env-validate``: problems per variable, exit 3, JSON, and never a secret in the output."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import Result

from cdb_cli.errors import ExitCode

REPO = Path(__file__).resolve().parents[2]
GOOD_KEY = "mx0aBYs33eIilxBWC5"  # the documented example key (mexc_api.md §1.4)
GOOD_SECRET = "45d0b3c26f2644f19bfb98b07741b2f5"


def write_env(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text, encoding="utf-8")
    os.chmod(path, mode)
    return path


def test_clean_env_example_copy_is_valid(cdb: Callable[..., Result], tmp_path: Path) -> None:
    env = write_env(tmp_path / ".env", (REPO / ".env.example").read_text(encoding="utf-8"))
    result = cdb("env-validate", "--env-file", str(env))
    assert result.exit_code == 0, result.output
    assert "OK" in result.stdout


def test_typo_exits_3_and_suggests_the_variable(cdb: Callable[..., Result], tmp_path: Path) -> None:
    env = write_env(tmp_path / ".env", "CDB_DATABSE_URL=sqlite:///x.db\n")
    result = cdb("env-validate", "--env-file", str(env))
    assert result.exit_code == ExitCode.CONFIGURATION, result.output
    assert "CDB_DATABSE_URL: unknown variable; did you mean CDB_DATABASE_URL?" in result.stdout


def test_global_env_file_option_is_used(cdb: Callable[..., Result], tmp_path: Path) -> None:
    env = write_env(tmp_path / "x.env", "CDB_SYMBOLZ=BTCUSDT\n")
    result = cdb("--env-file", str(env), "env-validate")
    assert result.exit_code == ExitCode.CONFIGURATION, result.output
    assert "did you mean CDB_SYMBOLS?" in result.stdout


def test_every_problem_gets_one_line(cdb: Callable[..., Result], tmp_path: Path) -> None:
    env = write_env(
        tmp_path / ".env",
        "CDB_HTTP_PORT=abc\nCDB_MAX_SPREAD_PCT=-1\nCDB_SYMBOLS=btc-usdt\nnot a line\n"
        "CDB_BUS_URL=amqp://x\n",
        mode=0o644,
    )
    result = cdb("env-validate", "--env-file", str(env))
    assert result.exit_code == ExitCode.CONFIGURATION, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 6, result.stdout
    for expected in ("CDB_HTTP_PORT:", "CDB_MAX_SPREAD_PCT:", "CDB_SYMBOLS:", "CDB_BUS_URL:"):
        assert sum(line.startswith(expected) for line in lines) == 1, result.stdout
    assert any("line is not NAME=VALUE" in line for line in lines)
    assert any("chmod 600" in line for line in lines)


def test_environment_variables_are_checked_too(
    cdb: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CDB_HTTP_PROT", "8080")
    result = cdb("env-validate")
    assert result.exit_code == ExitCode.CONFIGURATION, result.output
    assert "did you mean CDB_HTTP_PORT?" in result.stdout


@pytest.mark.parametrize(
    ("key", "secret", "codes"),
    [
        (GOOD_KEY, GOOD_SECRET, []),
        ("", GOOD_SECRET, ["empty_secret"]),
        ("your_api_key_here", "changeme", ["placeholder_secret", "placeholder_secret"]),
        ("AKIAIOSFODNN7EXAMPLF", "45D0B3C26F2644F19BFB98B07741B2F5", ["bad_key_format"] * 2),
    ],
)
def test_key_formats_and_placeholders(
    cdb: Callable[..., Result], tmp_path: Path, key: str, secret: str, codes: list[str]
) -> None:
    env = write_env(tmp_path / ".env", f"CDB_MEXC_API_KEY={key}\nCDB_MEXC_API_SECRET={secret}\n")
    result = cdb("env-validate", "--env-file", str(env), "--json")
    expected = ExitCode.CONFIGURATION if codes else ExitCode.OK
    assert result.exit_code == expected, result.output
    report = json.loads(result.stdout)
    assert sorted(problem["code"] for problem in report["problems"]) == sorted(codes)


def test_live_mode_requires_keys(cdb: Callable[..., Result], tmp_path: Path) -> None:
    env = write_env(tmp_path / ".env", "CDB_MODE=live\n")
    result = cdb("env-validate", "--env-file", str(env), "--json")
    assert result.exit_code == ExitCode.CONFIGURATION, result.output
    report = json.loads(result.stdout)
    assert report["mode"] == "live"
    assert {problem["variable"] for problem in report["problems"]} == {
        "CDB_MEXC_API_KEY",
        "CDB_MEXC_API_SECRET",
    }
    paper = cdb("env-validate", "--env-file", str(env), "--mode", "paper")
    assert paper.exit_code == 0, paper.output


def test_json_document_is_alone_on_stdout(cdb: Callable[..., Result], tmp_path: Path) -> None:
    env = write_env(tmp_path / ".env", "CDB_DATABSE_URL=x\n")
    result = cdb("--json", "env-validate", "--env-file", str(env))
    assert result.exit_code == ExitCode.CONFIGURATION, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert report["problems"][0]["code"] == "unknown_variable"


def test_missing_env_file_is_a_configuration_error(
    cdb: Callable[..., Result], tmp_path: Path
) -> None:
    result = cdb("env-validate", "--env-file", str(tmp_path / "nope.env"))
    assert result.exit_code == ExitCode.CONFIGURATION, result.output
    assert "does not exist" in result.stdout


@pytest.mark.parametrize(
    "secret_line",
    [
        "CDB_MEXC_API_SECRET=S3cr3tNotHexButLongEnoughZZZZ",  # wrong format
        "CDB_MEXC_API_SECRET=xxxxS3cr3tPlaceholderxxxx",  # placeholder
        f"CDB_MEXC_API_SECRET={GOOD_SECRET}",  # valid
        "CDB_MEXC_API_KEY=mx0-S3cr3tKeyWithDash",  # malformed key
    ],
)
def test_no_secret_value_ever_appears_in_output(
    cdb: Callable[..., Result], tmp_path: Path, secret_line: str
) -> None:
    value = secret_line.split("=", 1)[1]
    # Broken neighbours too, so every code path that prints runs.
    env = write_env(
        tmp_path / ".env", f"{secret_line}\nCDB_HTTP_PORT=x\nCDB_MODE=live\nCDB_TYPO=1\n", 0o644
    )
    for args in (["env-validate"], ["--json", "env-validate"], ["db", "status"]):
        result = cdb("--env-file", str(env), *args)
        assert result.exit_code == ExitCode.CONFIGURATION, result.output
        assert value not in result.stdout
        assert value not in result.stderr


def test_smtp_password_is_a_secret_never_echoed(cdb: Callable[..., Result], tmp_path: Path) -> None:
    env = write_env(
        tmp_path / ".env",
        "CDB_SMTP_HOST=mail.example.org\nCDB_SMTP_FROM=cdb@example.org\n"
        "CDB_SMTP_TO=ops@example.org\nCDB_SMTP_USER=ops\nCDB_SMTP_PASSWORD=changeme-Xy7\n",
    )
    result = cdb("env-validate", "--env-file", str(env), "--json")
    assert result.exit_code == ExitCode.CONFIGURATION, result.output
    problems = {p["variable"]: p["code"] for p in json.loads(result.stdout)["problems"]}
    assert problems == {"CDB_SMTP_PASSWORD": "placeholder_secret"}
    assert "changeme-Xy7" not in result.stdout + result.stderr


def test_smtp_host_without_recipients_is_one_problem(
    cdb: Callable[..., Result], tmp_path: Path
) -> None:
    env = write_env(tmp_path / ".env", "CDB_SMTP_HOST=mail.example.org\n")
    result = cdb("env-validate", "--env-file", str(env))
    assert result.exit_code == ExitCode.CONFIGURATION, result.output
    assert "CDB_SMTP_FROM and CDB_SMTP_TO are not" in result.stdout


def test_live_mode_does_not_require_an_smtp_password(
    cdb: Callable[..., Result], tmp_path: Path
) -> None:
    env = write_env(
        tmp_path / ".env",
        f"CDB_MODE=live\nCDB_MEXC_API_KEY={GOOD_KEY}\nCDB_MEXC_API_SECRET={GOOD_SECRET}\n",
    )
    result = cdb("env-validate", "--env-file", str(env))
    assert result.exit_code == 0, result.output


def test_the_strategy_and_its_settings_are_checked(
    cdb: Callable[..., Result], tmp_path: Path
) -> None:
    good = "CDB_STRATEGY=mean_reversion\nCDB_STRATEGY_BB_PERIOD=30\nCDB_STRATEGY_MAX_ERRORS=3\n"
    env = write_env(tmp_path / ".env", good)
    result = cdb("env-validate", "--env-file", str(env))
    assert result.exit_code == 0, result.output
    assert "unknown" not in result.stdout
    bad = write_env(tmp_path / "bad.env", good.replace("=30", "=1"))
    result = cdb("env-validate", "--env-file", str(bad))
    assert result.exit_code == ExitCode.CONFIGURATION, result.output
    assert (
        "CDB_STRATEGY: strategy 'mean_reversion': bb_period: Input should be greater than or "
        "equal to 2 (received '1')"
    ) in result.stdout
