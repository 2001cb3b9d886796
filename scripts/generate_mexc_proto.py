"""Regenerate ``mexc_push_pb2.py`` (+ ``.pyi``) in cdb_cli/adapters/mexc/proto from the .proto.

Dev-time only: needs ``grpcio-tools`` (``pip install -e '.[dev]'``), which bundles ``protoc``. The
generated module checks at import that the installed ``protobuf`` runtime is at least the version
of the ``protoc`` that wrote it (same major); ``pyproject.toml`` pins the runtime accordingly, and
this script refuses to write code newer than that pin.

    python scripts/generate_mexc_proto.py          # regenerate
    python scripts/generate_mexc_proto.py --check  # exit 1 when the committed files are stale
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROTO_DIR = REPO / "cdb_cli" / "adapters" / "mexc" / "proto"
PROTO = "mexc_push.proto"
OUTPUTS = ("mexc_push_pb2.py", "mexc_push_pb2.pyi")


def _runtime_floor() -> tuple[int, ...]:
    """The minimum protobuf version pinned in pyproject.toml (``protobuf>=X.Y.Z,<N``)."""
    text = (REPO / "pyproject.toml").read_text()
    found = re.search(r'"protobuf>=([0-9.]+)', text)
    if found is None:
        sys.exit("pyproject.toml pins no protobuf>=X.Y.Z")
    return tuple(int(part) for part in found.group(1).split("."))


def _generate(out_dir: Path) -> None:
    from grpc_tools import protoc  # dev-time dependency

    code = protoc.main(
        [
            "protoc",
            f"-I{PROTO_DIR}",
            f"--python_out={out_dir}",
            f"--pyi_out={out_dir}",
            str(PROTO_DIR / PROTO),
        ]
    )
    if code != 0:
        sys.exit(f"protoc failed with exit code {code}")
    generated = (out_dir / OUTPUTS[0]).read_text()
    version = re.search(r"Protobuf Python Version: ([0-9.]+)", generated)
    if version is None:
        sys.exit("cannot read the gencode version from the generated module")
    gencode = tuple(int(part) for part in version.group(1).split("."))
    floor = _runtime_floor()
    if gencode > floor or gencode[0] != floor[0]:
        sys.exit(
            f"protoc writes gencode {version.group(1)}, but pyproject.toml allows protobuf "
            f"runtime {'.'.join(map(str, floor))}: raise the pin or use an older grpcio-tools"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare, write nothing")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        _generate(out)
        stale = [
            name
            for name in OUTPUTS
            if not (PROTO_DIR / name).is_file()
            or (PROTO_DIR / name).read_text() != (out / name).read_text()
        ]
        if args.check:
            for name in stale:
                print(f"stale: {name}")
            return 1 if stale else 0
        for name in OUTPUTS:
            shutil.copyfile(out / name, PROTO_DIR / name)
            print(f"wrote {(PROTO_DIR / name).relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
