"""The settings' defaults that depend on the machine: the user data dir (``platformdirs``) that
holds the default SQLite database, backups and spill files (re-exported by ``cdb_cli.settings``).
"""

from __future__ import annotations

from pathlib import Path

from platformdirs import user_data_dir

__all__ = ["default_backup_dir", "default_database_url", "default_spill_dir"]


def default_database_url() -> str:
    """The embedded default: a SQLite file in the user data dir (created on first use)."""
    return f"sqlite:///{Path(user_data_dir('cdb', appauthor=False)) / 'cdb.db'}"


def default_backup_dir() -> Path:
    """The default backup folder: ``backups`` in the user data dir, beside the default database."""
    return Path(user_data_dir("cdb", appauthor=False)) / "backups"


def default_spill_dir() -> Path:
    """Where a stop with the store down writes what it could not store: ``unsaved`` in the user
    data dir."""
    return Path(user_data_dir("cdb", appauthor=False)) / "unsaved"
