"""Column types that keep money exact on every engine.

PostgreSQL stores money as ``NUMERIC(38, 18)``. SQLite has no exact decimal type: its ``NUMERIC``
affinity turns ``'0.1'`` into a binary float and keeps 15 significant digits. There the same
column is text holding the fixed-point string, so ``Decimal`` values round-trip exactly on both.
A value that ``NUMERIC(38, 18)`` would round (more than 18 places or 20 whole digits) is refused
with ``ValueError`` instead of being stored altered.
"""

from __future__ import annotations

from decimal import Context, Decimal
from typing import Any, Final

from sqlalchemy import BigInteger, Integer, Numeric, String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

__all__ = ["MONEY_PRECISION", "MONEY_SCALE", "IdType", "Money", "money_text"]

MONEY_PRECISION: Final = 38
MONEY_SCALE: Final = 18
_MONEY_TEXT_LENGTH: Final = MONEY_PRECISION + 2  # sign and point
_EXACT: Final = Context(prec=MONEY_PRECISION + 4)  # normalize/quantize without rounding

IdType: Final = BigInteger().with_variant(Integer(), "sqlite")
"""Surrogate keys: BIGINT, except SQLite where only ``INTEGER PRIMARY KEY`` autoincrements."""


def money_text(value: Decimal) -> str:
    """Return ``value`` as a plain fixed-point string, refusing what ``NUMERIC(38, 18)`` rounds.

    >>> money_text(Decimal("1E-8"))
    '0.00000001'
    """
    _, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):  # 'n', 'N' or 'F': NaN or infinity
        raise ValueError(f"Money must be a finite number; received {value}")
    if exponent < -MONEY_SCALE:  # maybe only trailing zeros: 1.500000000000000000000 -> 1.5
        value = _EXACT.normalize(value)
        _, digits, exponent = value.as_tuple()
        assert isinstance(exponent, int)  # noqa: S101 - still finite
    if -exponent > MONEY_SCALE or len(digits) + exponent > MONEY_PRECISION - MONEY_SCALE:
        raise ValueError(
            f"Money {value} does not fit NUMERIC({MONEY_PRECISION}, {MONEY_SCALE}) "
            "and would be rounded"
        )
    return format(value, "f")


def _unpad(value: Decimal) -> Decimal:
    # NUMERIC(38, 18) reads back as 1.500000000000000000; give 1.5 (and 100, never 1E+2).
    value = _EXACT.normalize(value)
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent > 0:
        return value.quantize(Decimal(1), context=_EXACT)
    return value


class Money(TypeDecorator[Decimal]):
    """An exact ``Decimal``: ``NUMERIC(38, 18)``, or fixed-point text on SQLite."""

    impl = Numeric(MONEY_PRECISION, MONEY_SCALE, asdecimal=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(_MONEY_TEXT_LENGTH))
        return dialect.type_descriptor(Numeric(MONEY_PRECISION, MONEY_SCALE, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        text = money_text(value)  # refuses values the column would round
        return text if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if isinstance(value, Decimal):
            return _unpad(value)
        return Decimal(str(value))
