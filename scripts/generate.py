"""Regenerate the files derived from the code: .env.example, the README config table, completions.

Run after changing the settings schema or the commands: ``python scripts/generate.py``.
Tests (tests/test_generated_files.py) fail when a committed file differs from what this writes.
"""

from __future__ import annotations

import re
from pathlib import Path

from cdb_cli.schema_doc import COMPLETION_SHELLS, completion_script, config_table, env_example

ROOT = Path(__file__).resolve().parent.parent
TABLE_START = "<!-- config-table:start -->\n"
TABLE_END = "<!-- config-table:end -->"


def main() -> None:
    (ROOT / ".env.example").write_text(env_example(), encoding="utf-8")
    for shell in COMPLETION_SHELLS:
        (ROOT / "completions" / f"cdb.{shell}").write_text(completion_script(shell), "utf-8")
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(TABLE_START) + ".*?" + re.escape(TABLE_END), re.DOTALL)
    readme.write_text(pattern.sub(TABLE_START + config_table() + TABLE_END, text), "utf-8")


if __name__ == "__main__":
    main()
