"""JTS strategy language: TOML strategy files whose rules are DSL formulas, compiled to a
vectorized evaluator (backtests) and a streaming evaluator (live). See docs/dsl.md."""

from jts.strategy.errors import FormulaError
from jts.strategy.loader import CompiledStrategy, load_strategy
from jts.strategy.runtime import StreamEvaluator, VectorSignals

__all__ = ["CompiledStrategy", "FormulaError", "StreamEvaluator", "VectorSignals",
           "load_strategy"]
