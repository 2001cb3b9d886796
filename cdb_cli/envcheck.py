"""``cdb env-validate``: check a ``.env`` file and the environment against the settings schema.

Stages, in order (STYLE.md §8): the file itself (lines, permissions), names (unknown ``CDB_*`` with
a did-you-mean), the schema (types and ranges per field, the same load every command does),
secrets (empty, placeholder, MEXC key formats) and mode rules (live needs keys). No network I/O:
reachability belongs to ``cdb systemcheck``. No problem message ever contains a secret value.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cdb_cli.engine.errors import ConfigurationError
from cdb_cli.envfile import EnvFileError, env_file_bindings, env_file_values, read_env_file
from cdb_cli.redaction import redact, redact_key_shapes
from cdb_cli.secret_files import (
    SecretFile,
    file_variables,
    loose_mode,
    read_secret,
    secret_files,
)
from cdb_cli.settings import ENV_PREFIX, SECRET_FIELDS, STRATEGY_PREFIX, Settings, env_name
from cdb_cli.settings_io import describe_validation_error, secret_values

__all__ = [
    "EnvReport",
    "Problem",
    "loose_files",
    "settings_secret_problems",
    "validate_environment",
]

# CDB_* variables that are read by the process but are not settings.
PROCESS_VARIABLES = frozenset({"CDB_DEBUG", "CDB_ENV_FILE", "CDB_REQUIRE_SERVICES"})
PROCESS_PREFIXES = ("CDB_TEST_",)

# MEXC access keys look like the documented mx0aBYs33eIilxBWC5 (mexc_api.md §1.4): "mx0" and
# alphanumerics; secret keys are 32 lowercase hex characters.
API_KEY_PATTERN = re.compile(r"mx0[A-Za-z0-9]{8,61}")
API_SECRET_PATTERN = re.compile(r"[0-9a-f]{32}")
PLACEHOLDER_PATTERN = re.compile(
    r"(change.?me|your[_-]?|placeholder|example|dummy|replace|todo|xxx+|<.*>|\.\.\.|^\*+$)",
    re.IGNORECASE,
)
_LINE_PATTERN = re.compile(r"^\s*(export\s+)?[A-Za-z_][A-Za-z0-9_]*\s*=")
_NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Problem:
    """One finding: the variable it is about, a stable code, and a message without secrets."""

    variable: str
    code: str
    message: str

    def line(self) -> str:
        return f"{self.variable}: {self.message}"


@dataclass
class EnvReport:
    """What env-validate found; ``ok`` when there is no problem."""

    env_file: str | None
    mode: str
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "env_file": self.env_file,
            "mode": self.mode,
            "problems": [asdict(problem) for problem in self.problems],
        }


def _known_variables() -> list[str]:
    return [env_name(name) for name in Settings.model_fields] + sorted(file_variables())


def _file_problems(env_file: Path) -> tuple[list[Problem], dict[str, str]]:
    problems = _loose_env_file(env_file)
    try:
        text = read_env_file(env_file)
    except EnvFileError as e:
        return [*problems, Problem(e.where, "bad_encoding", e.reason)], {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line and not line.startswith("#") and not _LINE_PATTERN.match(line):
            problems.append(Problem(f"{env_file}:{number}", "bad_line", "line is not NAME=VALUE"))
    return problems, env_file_values(env_file)


def _unknown_problems(names: list[str]) -> list[Problem]:
    known = _known_variables()
    problems = []
    for name in names:
        upper = name.upper()
        if not _NAME_PATTERN.fullmatch(name):
            continue  # not a name (CDB_X:value, an unclosed quote): a bad_line, never echoed
        if not upper.startswith(ENV_PREFIX) or upper in known:
            continue
        if upper.startswith(STRATEGY_PREFIX):
            continue  # the strategy's own setting, checked by its model when it loads
        if upper in PROCESS_VARIABLES or upper.startswith(PROCESS_PREFIXES):
            continue
        guess = difflib.get_close_matches(upper, known, n=1, cutoff=0.6)
        hint = f"; did you mean {guess[0]}?" if guess else ""
        problems.append(Problem(name, "unknown_variable", f"unknown variable{hint}"))
    return problems


# Secrets with a known shape; the others (the SMTP password) are only checked for empty and
# placeholder values. LIVE_SECRETS are required in live mode.
_SECRET_PATTERNS = {"mexc_api_key": API_KEY_PATTERN, "mexc_api_secret": API_SECRET_PATTERN}
_SECRET_SHAPES = {
    "mexc_api_key": "does not look like a MEXC access key ('mx0' and letters/digits)",
    "mexc_api_secret": "does not look like a MEXC secret key (32 lowercase hex characters)",
}
LIVE_SECRETS = frozenset({"mexc_api_key", "mexc_api_secret"})


def _secret_problems(raw: dict[str, str], mode: str) -> list[Problem]:
    problems = []
    for name in sorted(SECRET_FIELDS):
        variable = env_name(name)
        value = raw.get(variable)
        pattern = _SECRET_PATTERNS.get(name)
        if value is None:
            if mode == "live" and name in LIVE_SECRETS:
                problems.append(Problem(variable, "missing_secret", "required in live mode"))
            continue
        if not value.strip():
            problems.append(Problem(variable, "empty_secret", "is set but empty"))
        elif PLACEHOLDER_PATTERN.search(value):
            problems.append(Problem(variable, "placeholder_secret", "holds a placeholder value"))
        elif pattern is not None and not pattern.fullmatch(value.strip()):
            problems.append(Problem(variable, "bad_key_format", _SECRET_SHAPES[name]))
        elif name == "webhook_urls":
            problems += _webhook_problems(variable, value)
    return problems


def _webhook_problems(variable: str, value: str) -> list[Problem]:
    """A bad ``CDB_WEBHOOK_URLS`` entry, named by its position (the URLs are secrets)."""
    from cdb_cli.adapters.notify.webhook import parse_webhook_urls

    try:
        parse_webhook_urls(value)
    except ValueError as e:
        return [Problem(variable, "invalid_value", str(e))]
    return []


def _schema_problems(env_file: Path | None, secrets: list[str]) -> list[Problem]:
    try:
        Settings(_env_file=env_file, _env_file_encoding="utf-8-sig")
    except ValidationError as e:
        problems = []
        for line in describe_validation_error(e, secrets):
            variable, _, message = line.partition(": ")
            if variable.lower().removeprefix(ENV_PREFIX.lower()) in SECRET_FIELDS:
                continue  # secrets are judged by _secret_problems, never echoed
            problems.append(Problem(variable, "invalid_value", message))
        return problems
    return []


def _strategy_problems(env_file: Path | None) -> list[Problem]:
    """The strategy (``CDB_STRATEGY``) loads, its ``CDB_STRATEGY_*`` settings are valid for its
    model and it passes the start-up probe (what ``cdb run`` checks before it starts)."""
    from cdb_cli.engine.errors import ConfigurationError
    from cdb_cli.kernel.strategies import StrategyError, strategy_factory
    from cdb_cli.settings_io import load_settings

    try:
        settings = load_settings(env_file)
    except ConfigurationError:  # reported by the schema check
        return []
    try:
        strategy_factory(settings)
    except StrategyError as e:
        return [Problem(env_name("strategy"), "invalid_strategy", e.message)]
    return []


def validate_environment(
    env_file: Path | None,
    *,
    mode: str | None = None,
) -> EnvReport:
    """Check ``env_file`` (optional) plus the process environment; return every problem found.

    ``mode`` overrides ``CDB_MODE`` for the mode rules (``live`` requires both MEXC keys).
    """
    problems: list[Problem] = []
    file_values: dict[str, str] = {}
    if env_file is not None:
        if not env_file.is_file():
            problems.append(Problem(str(env_file), "missing_file", "env file does not exist"))
            return EnvReport(str(env_file), mode or "paper", problems)
        file_problems, file_values = _file_problems(env_file)
        problems += file_problems
        if any(problem.code == "bad_encoding" for problem in file_problems):
            return EnvReport(str(env_file), mode or "paper", problems)
    environment = {
        key: value for key, value in os.environ.items() if key.upper().startswith("CDB_")
    }
    # Effective raw values, the environment winning over the file as in Settings.
    raw = {key.upper(): value for key, value in {**file_values, **environment}.items()}
    effective_mode = redact((mode or raw.get("CDB_MODE") or "paper").lower())

    bindings = env_file_bindings(env_file) if env_file is not None else []
    secrets = secret_values(file_values, bindings, environment)
    file_problems, from_files = _secret_file_problems(raw)
    problems += file_problems
    raw.update(from_files)
    secrets += list(from_files.values())
    problems += _unknown_problems(sorted({*file_values, *environment}))
    schema = _schema_problems(env_file, secrets)
    problems += schema or _strategy_problems(env_file)
    problems += _secret_problems(raw, effective_mode)
    # the last net: no line of the report holds a secret, whatever check wrote it (also one that
    # a typo moved: a key glued to a name without its '=' is a key's shape)
    problems = [
        Problem(_redacted(p.variable, secrets), p.code, _redacted(p.message, secrets))
        for p in problems
    ]
    return EnvReport(str(env_file) if env_file else None, effective_mode, problems)


def loose_files(env_file: Path | None) -> list[Problem]:
    """The ``.env`` and the credential files (:mod:`cdb_cli.secret_files`) that group or others
    may read, as ``file_permissions`` problems: what ``cdb run --paper`` warns about at start and
    what makes the live gate refuse."""
    problems = []
    file_values: dict[str, str] = {}
    if env_file is not None and env_file.is_file():
        problems += _loose_env_file(env_file)
        file_values = env_file_values(env_file)
    environment = {k: v for k, v in os.environ.items() if k.upper().startswith("CDB_")}
    sources = secret_files({**file_values, **environment})
    return problems + [p for source in sources if (p := _loose_source(source)) is not None]


def _loose_env_file(env_file: Path) -> list[Problem]:
    mode = loose_mode(env_file)
    if mode is None:
        return []
    return [_loose(str(env_file), f"readable by group/others (mode {mode:04o})")]


def _loose_source(source: SecretFile) -> Problem | None:
    mode = loose_mode(source.path)
    if mode is None:
        return None
    what = f"{source.variable} ({source.via}) is readable by group/others (mode {mode:04o})"
    return _loose(str(source.path), what)


def _loose(path: str, what: str) -> Problem:
    return Problem(path, "file_permissions", f"{what}; run: chmod 600 {path}")


def _secret_file_problems(raw: dict[str, str]) -> tuple[list[Problem], dict[str, str]]:
    """Secrets given as files (:mod:`cdb_cli.secret_files`): a file group or others may read, or
    one that cannot be read, is a problem; the values read, by variable, join the checks."""
    problems: list[Problem] = []
    values: dict[str, str] = {}
    for source in secret_files(raw):
        loose = _loose_source(source)
        if loose is not None:
            problems.append(loose)
        try:
            values[source.variable] = read_secret(source)
        except ConfigurationError as e:
            problems.append(Problem(source.variable, "unreadable_secret_file", e.message))
    return problems, values


def _redacted(text: str, secrets: list[str]) -> str:
    return redact_key_shapes(redact(text, secrets))


def settings_secret_problems(settings: Settings, mode: str) -> list[Problem]:
    """The secret checks of env-validate (missing in live mode, empty, placeholder, MEXC key
    shapes) on loaded ``settings`` rather than the raw environment; no message holds a secret."""
    raw = {
        env_name(name): value.get_secret_value()
        for name in SECRET_FIELDS
        if (value := getattr(settings, name)) is not None
    }
    return _secret_problems(raw, mode)
