"""Package discovery for setuptools: ship the top-level `commands/` folder as `cdb_cli.commands`.

Everything else about the build lives in pyproject.toml. Discovery is computed, not listed, so a
new subpackage can never be left out of the wheel (tests/test_packaging.py installs the wheel).
"""

from __future__ import annotations

from setuptools import find_packages, setup

engine_packages = find_packages(include=["cdb_cli", "cdb_cli.*"])
command_packages = ["cdb_cli.commands"] + [
    f"cdb_cli.commands.{name}" for name in find_packages("commands")
]

setup(
    packages=engine_packages + command_packages,
    package_dir={"cdb_cli.commands": "commands"},
)
