"""Documents generated from the settings schema and the app: ``.env.example``, the README's
configuration table and the shell completion scripts. ``scripts/generate.py`` writes them; tests
compare the files with these functions so they can never drift from the code.
"""

from __future__ import annotations

from typing import Any

from cdb_cli.settings import SECRET_FIELDS, Settings, env_name

__all__ = ["COMPLETION_SHELLS", "completion_script", "config_table", "env_example"]

COMPLETION_SHELLS = ("bash", "zsh", "fish")
_DYNAMIC_DEFAULTS = {
    "database_url": "sqlite:///<user data dir>/cdb.db",
    "backup_dir": "<user data dir>/backups",
    "spill_dir": "<user data dir>/unsaved",
    "strategy_params": "{}",
}


def _default_text(name: str) -> str:
    if name in _DYNAMIC_DEFAULTS:
        return _DYNAMIC_DEFAULTS[name]
    field = Settings.model_fields[name]
    value: Any = field.default
    if value is None:
        return ""
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    return str(value)


def env_example() -> str:
    """The text of ``.env.example``: every variable, its description and default.

    Variables with a fixed default are set to it; secrets and machine-dependent defaults are
    commented out, so a plain copy is valid (``cdb env-validate`` exits 0 on it). So are the
    settings live trading wants the operator to decide (the loss limits, the size cap and the
    metrics port, :data:`~cdb_cli.services.governance.OPERATOR_DECIDES`): a copied example must
    not pass the live gate's "set explicitly" rule for them.
    """
    from cdb_cli.services.governance import OPERATOR_DECIDES

    lines = [
        "# cdb settings. Copy to .env (chmod 600) and edit; every variable is optional in paper",
        "# mode. Generated from cdb_cli/settings.py by scripts/generate.py: do not edit by hand.",
        "",
    ]
    for name, field in Settings.model_fields.items():
        lines.append(f"# {field.description}")
        if name in OPERATOR_DECIDES:
            lines.append("# Live trading: set it yourself (the live gate refuses the default).")
        commented = name in SECRET_FIELDS or name in _DYNAMIC_DEFAULTS or name in OPERATOR_DECIDES
        lines.append(f"{'# ' if commented else ''}{env_name(name)}={_default_text(name)}")
        lines.append("")
    return "\n".join(lines)


def config_table() -> str:
    """The README's configuration table (Markdown)."""
    rows = ["| variable | default | description |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = _default_text(name) or "(unset)"
        description = (field.description or "").replace("|", "\\|")
        rows.append(f"| `{env_name(name)}` | `{default}` | {description} |")
    return "\n".join(rows) + "\n"


def completion_script(shell: str) -> str:
    """The completion script Typer generates for ``cdb`` in ``shell``."""
    from typer._completion_shared import get_completion_script

    script = get_completion_script(prog_name="cdb", complete_var="_CDB_COMPLETE", shell=shell)
    return script + "\n"  # what `cdb --show-completion` prints
