"""DSL error types and source positions.

Every formula problem is a :class:`FormulaError` (a ``jts.errors.DSLError``) whose ``str()`` is
``FILE:LINE:COL: message`` followed by the source line and a caret with a hint.
"""

from __future__ import annotations

from dataclasses import dataclass

from jts.errors import DSLError


@dataclass(frozen=True)
class Source:
    """Where a formula came from: maps an offset in the formula to a file line and column."""

    text: str
    file: str = "<formula>"
    line: int = 1  # file line of formula offset 0
    col: int = 1  # file column of formula offset 0
    exact: bool = True  # False when escapes make the mapping approximate

    def locate(self, loc: int) -> tuple[int, int, str]:
        loc = max(0, min(loc, len(self.text)))
        before = self.text[:loc]
        nl = before.count("\n")
        start = before.rfind("\n") + 1
        end = self.text.find("\n", loc)
        line_text = self.text[start: end if end >= 0 else len(self.text)]
        col = loc - start + 1
        if nl == 0:
            return self.line, self.col + col - 1, line_text
        return self.line + nl, col, line_text


class FormulaError(DSLError):
    """A formula error with a position, the offending line, a caret and a hint."""

    kind = "error"

    def __init__(self, message: str, src: Source, loc: int, hint: str = "") -> None:
        self.message = message
        self.file = src.file
        self.line, self.col, self.line_text = src.locate(loc)
        self.hint = hint
        loc = max(0, min(loc, len(src.text)))
        local_col = loc - (src.text[:loc].rfind("\n") + 1) + 1
        caret = " " * (local_col - 1) + "^" + (f" {hint}" if hint else "")
        super().__init__(f"{self.file}:{self.line}:{self.col}: {message}\n"
                         f"{self.line_text}\n{caret}")

    @property
    def headline(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.message}"


class DSLSyntaxError(FormulaError):
    kind = "syntax"


class DSLNameError(FormulaError):
    kind = "name"


class DSLArityError(FormulaError):
    kind = "arity"


class DSLTypeError(FormulaError):
    kind = "type"


class DSLParamError(FormulaError):
    kind = "param"


def did_you_mean(name: str, choices: list[str] | tuple[str, ...] | set[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, sorted(choices), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else ""
