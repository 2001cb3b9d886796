"""Regenerate ``mexc_push_pb2.py`` (+ ``.pyi``) in cdb_cli/adapters/mexc/proto from MEXC's protos.

``proto/upstream/`` holds MEXC's official .proto files verbatim (github.com/mexcdevelop/
websocket-proto, see its README). Upstream ships one file per message and no package; this script
joins their messages into ``mexc_push.proto`` under the package ``cdb.mexc.v3`` (so that nothing
clashes in the global descriptor pool, e.g. with a client library's own copy of the same protos),
dropping only ``syntax``, ``option`` and ``import`` lines. Names and package do not travel on the
wire: field numbers and types do, and those are upstream's, untouched.

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
UPSTREAM_DIR = PROTO_DIR / "upstream"
PROTO = "mexc_push.proto"
OUTPUTS = ("mexc_push_pb2.py", "mexc_push_pb2.pyi")
HEADER = """\
// MEXC spot WebSocket push messages: the messages of MEXC's official .proto files in
// upstream/ (github.com/mexcdevelop/websocket-proto, see upstream/README.md), joined under one
// package by scripts/generate_mexc_proto.py. Generated: do not edit; change upstream/ and run
//     python scripts/generate_mexc_proto.py
syntax = "proto3";

package cdb.mexc.v3;
"""
_DROPPED = re.compile(r"^\s*(syntax|option|import|package)\b")


def derived_proto() -> str:
    """``mexc_push.proto`` as the upstream files make it (the wrapper first, then by name)."""
    names = sorted(p.name for p in UPSTREAM_DIR.glob("*.proto"))
    names.remove("PushDataV3ApiWrapper.proto")
    parts = [HEADER]
    for name in ["PushDataV3ApiWrapper.proto", *names]:
        lines = (UPSTREAM_DIR / name).read_text(encoding="utf-8").splitlines()
        kept = "\n".join(line.rstrip() for line in lines if not _DROPPED.match(line)).strip()
        parts.append(f"// ---- upstream/{name}\n{kept}\n")
    return "\n".join(parts)


def _runtime_floor() -> tuple[int, ...]:
    """The minimum protobuf version pinned in pyproject.toml (``protobuf>=X.Y.Z,<N``)."""
    text = (REPO / "pyproject.toml").read_text()
    found = re.search(r'"protobuf>=([0-9.]+)', text)
    if found is None:
        sys.exit("pyproject.toml pins no protobuf>=X.Y.Z")
    return tuple(int(part) for part in found.group(1).split("."))


def _generate(out_dir: Path) -> None:
    from grpc_tools import protoc  # dev-time dependency

    (out_dir / PROTO).write_text(derived_proto(), encoding="utf-8")
    code = protoc.main(
        [
            "protoc",
            f"-I{out_dir}",
            f"--python_out={out_dir}",
            f"--pyi_out={out_dir}",
            str(out_dir / PROTO),
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
            for name in (PROTO, *OUTPUTS)
            if not (PROTO_DIR / name).is_file()
            or (PROTO_DIR / name).read_text() != (out / name).read_text()
        ]
        if args.check:
            for name in stale:
                print(f"stale: {name}")
            return 1 if stale else 0
        for name in (PROTO, *OUTPUTS):
            shutil.copyfile(out / name, PROTO_DIR / name)
            print(f"wrote {(PROTO_DIR / name).relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
