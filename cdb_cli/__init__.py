"""cdb: the operator toolkit and trading engine of Claire de Binare (MEXC spot)."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
