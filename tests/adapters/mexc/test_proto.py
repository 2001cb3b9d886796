"""The generated protobuf classes are MEXC's official protos (proto/upstream/), field by field."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest
from google.protobuf.descriptor import FieldDescriptor

from cdb_cli.adapters.mexc.proto import mexc_push_pb2

REPO = Path(__file__).resolve().parents[3]
PROTO_DIR = REPO / "cdb_cli" / "adapters" / "mexc" / "proto"
UPSTREAM = sorted((PROTO_DIR / "upstream").glob("*.proto"))
MESSAGE = re.compile(r"^message\s+(\w+)\s*\{(.*?)^\}", re.S | re.M)
FIELD = re.compile(r"^\s*(optional\s+|repeated\s+)?(\w+)\s+(\w+)\s*=\s*(\d+)\s*;", re.M)
SCALARS = {
    "string": FieldDescriptor.TYPE_STRING,
    "int32": FieldDescriptor.TYPE_INT32,
    "int64": FieldDescriptor.TYPE_INT64,
    "bool": FieldDescriptor.TYPE_BOOL,
}


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen", REPO / "scripts" / "generate_mexc_proto.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upstream_fields() -> dict[str, dict[str, tuple[str, str, int]]]:
    """message → field → (label, type, number), read from the upstream .proto text."""
    messages = {}
    for path in UPSTREAM:
        text = re.sub(r"/\*.*?\*/|//[^\n]*", "", path.read_text(encoding="utf-8"), flags=re.S)
        for name, body in MESSAGE.findall(text):
            body = re.sub(r"oneof\s+\w+\s*\{", "", body)
            messages[name] = {f[2]: (f[0].strip(), f[1], int(f[3])) for f in FIELD.findall(body)}
    return messages


def test_the_committed_proto_is_what_the_upstream_files_make() -> None:
    assert len(UPSTREAM) == 16
    committed = (PROTO_DIR / "mexc_push.proto").read_text(encoding="utf-8")
    assert generator().derived_proto() == committed


@pytest.mark.parametrize("message", sorted(upstream_fields()))
def test_every_upstream_field_has_its_number_type_and_label(message: str) -> None:
    fields = upstream_fields()[message]
    descriptor = mexc_push_pb2.DESCRIPTOR.message_types_by_name[message]
    assert sorted(f.name for f in descriptor.fields) == sorted(fields)
    for name, (label, kind, number) in fields.items():
        field = descriptor.fields_by_name[name]
        assert field.number == number
        if kind in SCALARS:
            assert field.type == SCALARS[kind]
        else:
            assert field.message_type is not None
            assert field.message_type.name == kind
        assert (label == "repeated") == field.is_repeated
        if kind in SCALARS and not field.is_repeated:  # proto3 "optional": presence is tracked
            assert (label == "optional") == field.has_presence


def test_the_2026_fields_are_there() -> None:
    fields = upstream_fields()
    assert fields["PublicAggreBookTickerV3Api"]["version"] == ("", "string", 5)
    assert fields["PublicAggreBookTickerV3Api"]["lastOrderCreateTime"] == ("", "int64", 6)
    assert fields["PublicAggreDepthsV3Api"]["lastOrderCreateTime"] == ("", "int64", 6)
    assert fields["PublicBookTickerBatchV3Api"]["version"] == ("", "string", 2)
