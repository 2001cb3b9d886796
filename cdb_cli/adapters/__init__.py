"""The edges: MEXC, message bus, SQL store; they implement the engine's ports."""

from __future__ import annotations
