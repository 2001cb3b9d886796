"""Choosing the strategy: ``CDB_STRATEGY`` (or ``--strategy``) → its class → a checked factory.

``CDB_STRATEGY`` is a built-in name (:data:`BUILTINS`), ``path/to/file.py:Class`` or
``package.module:Class``. Its settings model is filled from ``CDB_STRATEGY_<NAME>`` variables and
``--set NAME=VALUE`` (``Settings.strategy_params``); the built-in ``ema_cross`` reads the flat
``CDB_EMA_FAST``… settings first. :func:`strategy_factory` loads the class, validates its settings,
builds one instance and probes it with synthetic bars; anything wrong — the file or module does
not import, the class is missing, its constructor or a bar raises, ``on_bar`` returns something
other than a ``SignalIntent`` or ``None``, ``explain`` something other than a ``StrategyView`` —
is a :class:`StrategyError` (a ``ConfigurationError``: exit 3) of one line naming the strategy.

Every mode builds its strategies here: ``kernel.build_pipeline`` (replay, paper, live) and the
``signals`` component, so they all run the same class with the same settings.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from cdb_cli.engine.errors import ConfigurationError

if TYPE_CHECKING:
    from cdb_cli.engine.signals import Strategy
    from cdb_cli.settings import Settings

__all__ = [
    "BUILTINS",
    "StrategyError",
    "StrategyFactory",
    "strategy_class",
    "strategy_factory",
    "strategy_fields",
    "strategy_model",
]

BUILTINS: Mapping[str, str] = {
    "ema_cross": "cdb_cli.engine.signals:EmaCrossStrategy",
    "mean_reversion": "cdb_cli.engine.strategies.mean_reversion:MeanReversionStrategy",
    "regime": "cdb_cli.engine.strategies.regime:RegimeFilterStrategy",
}
"""The built-in strategies by name; ``ema_cross`` (the seed's rule) is the default."""

PROBE_BARS = 64
"""Synthetic bars fed after the warm-up to check a strategy at start."""


class StrategyError(ConfigurationError):
    """The strategy cannot be loaded, set up or run; one line naming it (exit 3)."""


class NoSettings(BaseModel):
    """The settings of a strategy class without a ``settings_model``: none."""

    model_config = {"frozen": True, "extra": "forbid"}


def _import_module(spec: str, where: str) -> Any:
    if where.endswith(".py") or "/" in where or "\\" in where:
        path = Path(where).expanduser()
        if not path.is_file():
            raise StrategyError(f"strategy {spec!r}: no file {where}")
        digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
        name = f"cdb_user_strategy_{path.stem}_{digest}"
        if name in sys.modules:  # loaded once per process: every symbol gets the same class
            return sys.modules[name]
        loader_spec = importlib.util.spec_from_file_location(name, path)
        if loader_spec is None or loader_spec.loader is None:
            raise StrategyError(f"strategy {spec!r}: {where} is not a Python file")
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[name] = module
        try:
            loader_spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
        return module
    return importlib.import_module(where)


def strategy_class(spec: str) -> type[Any]:
    """The class ``spec`` names (a built-in, ``FILE.py:Class`` or ``module:Class``)."""
    target = BUILTINS.get(spec, spec)
    where, sep, class_name = target.rpartition(":")
    if not sep or not where or not class_name:
        raise StrategyError(
            f"strategy {spec!r}: not a built-in ({', '.join(BUILTINS)}), "
            "nor path/to/file.py:Class or module:Class"
        )
    try:
        module = _import_module(spec, where)
    except StrategyError:
        raise
    except (Exception, SystemExit) as e:
        raise StrategyError(f"strategy {spec!r}: cannot import {where}: {_one_line(e)}") from None
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        raise StrategyError(f"strategy {spec!r}: {where} has no class {class_name}")
    missing = [name for name in ("on_bar", "explain") if not callable(getattr(cls, name, None))]
    if missing:
        raise StrategyError(f"strategy {spec!r}: {class_name} has no {' or '.join(missing)} method")
    model = getattr(cls, "settings_model", NoSettings)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise StrategyError(f"strategy {spec!r}: its settings_model is not a pydantic model")
    return cls


def strategy_model(spec: str) -> type[BaseModel]:
    """The settings model of strategy ``spec``."""
    model: type[BaseModel] = getattr(strategy_class(spec), "settings_model", NoSettings)
    return model


def strategy_fields(spec: str) -> list[str]:
    """The setting names of strategy ``spec`` (its settings model's fields)."""
    return list(strategy_model(spec).model_fields)


@dataclass(frozen=True, slots=True)
class StrategyFactory:
    """Builds one strategy instance (per symbol) of a checked class and settings."""

    spec: str
    cls: type[Any]
    settings: BaseModel

    def __call__(self) -> Strategy:
        strategy: Strategy = self.cls(self.settings)
        return strategy


def _settings(spec: str, cls: type[Any], settings: Settings) -> BaseModel:
    from cdb_cli.engine.config import SignalConfig

    model: type[BaseModel] = getattr(cls, "settings_model", NoSettings)
    values: dict[str, Any] = {}
    if model is SignalConfig:  # the seed's rule: its flat CDB_EMA_FAST… settings first
        from cdb_cli.settings import engine_config

        values = engine_config(settings, SignalConfig).model_dump()
    params = dict(settings.strategy_params)
    unknown = sorted(set(params) - set(model.model_fields))
    if unknown:
        valid = ", ".join(model.model_fields) or "none"
        raise StrategyError(f"strategy {spec!r}: unknown setting {unknown[0]!r}; valid: {valid}")
    try:
        return model.model_validate({**values, **params})
    except ValidationError as e:
        problems = []
        for item in e.errors():
            where = ".".join(str(part) for part in item["loc"]) or "settings"
            message = item["msg"].removeprefix("Value error, ")
            received = f" (received {item['input']!r})" if item["loc"] and "input" in item else ""
            problems.append(f"{where}: {message}{received}")
        raise StrategyError(f"strategy {spec!r}: {'; '.join(problems)}") from None


def _probe_bars(count: int) -> list[tuple[float, float]]:
    """Deterministic closes and volumes that trend up, range and fall (every branch a chance)."""
    bars = []
    for i in range(count):
        close = 100.0 * (1.0 + 0.05 * math.sin(i / 9.0) + 0.02 * math.sin(i / 2.3))
        bars.append((close, 1.0 + (i * 7 % 11)))
    return bars


def probe(factory: StrategyFactory) -> None:
    """Build one instance and run it over synthetic bars; :class:`StrategyError` when it breaks
    the interface (see the module docstring)."""
    from cdb_cli.engine.signals import StrategyView
    from cdb_cli.engine.strategies import check_intent

    spec = factory.spec
    try:
        strategy = factory()
    except Exception as e:
        raise StrategyError(f"strategy {spec!r}: its constructor raised {_one_line(e)}") from None
    warmup = getattr(strategy, "warmup", None)
    if not isinstance(warmup, int) or isinstance(warmup, bool) or warmup < 0:
        raise StrategyError(f"strategy {spec!r}: warmup is {warmup!r}, not a count of bars")
    if not isinstance(getattr(strategy, "name", None), str) or not strategy.name:
        raise StrategyError(f"strategy {spec!r}: its name is not a text")
    step = 60_000_000_000
    for i, (close, volume) in enumerate(_probe_bars(min(warmup, 5_000) + PROBE_BARS)):
        try:
            intent = strategy.on_bar(1_700_000_000_000_000_000 + i * step, close, volume)
            if intent is not None:
                check_intent(intent)
            view = strategy.explain(close, volume)
        except Exception as e:
            raise StrategyError(f"strategy {spec!r}: probe bar {i}: {_one_line(e)}") from None
        if not isinstance(view, StrategyView):
            raise StrategyError(f"strategy {spec!r}: explain returned {type(view).__name__}")


def strategy_factory(settings: Settings, *, check: bool = True) -> StrategyFactory:
    """The factory of ``CDB_STRATEGY`` with its validated settings; probed unless ``check`` is
    off. :class:`StrategyError` (one line, exit 3) when anything is wrong."""
    spec = settings.strategy
    cls = strategy_class(spec)
    factory = StrategyFactory(spec, cls, _settings(spec, cls, settings))
    if check:
        probe(factory)
    return factory


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or "(no message)"
    return f"{type(error).__name__}: {text[:200]}"
