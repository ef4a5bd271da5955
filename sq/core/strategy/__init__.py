"""Strategies as data: declarations (`declaration`), finding them (`loader`), compiling their
handlers for the engine (`handlers`). Users import `sq.strategy`, the public face of these."""

from sq.core.strategy.declaration import RISK_PARAMS, DeclarationError, Param, Strategy

__all__ = ["Strategy", "Param", "RISK_PARAMS", "DeclarationError"]
