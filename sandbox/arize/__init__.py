"""Arize REST v2 emulator (monitors and tags): `create_arize_app(ArizeState())`."""

from sandbox.arize.app import ROUTERS, create_arize_app
from sandbox.arize.state import ArizeState

__all__ = ["ROUTERS", "ArizeState", "create_arize_app"]
