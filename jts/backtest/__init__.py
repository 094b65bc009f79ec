"""Backtesting, optimization and reports: the compiled strategy run over stored bars in a
numba simulation kernel with the shared CostModel (see docs/backtest.md)."""

from jts.backtest.engine import Result, Settings, Trade, run_backtest

__all__ = ["Result", "Settings", "Trade", "run_backtest"]
