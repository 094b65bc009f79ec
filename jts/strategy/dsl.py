"""The formula grammar (pyparsing) → :mod:`jts.strategy.ast` nodes with source offsets.

Grammar, loosest binding first::

    expr    := and ("or" and)*          and  := not ("and" not)*
    not     := "not" not | cmp           cmp  := sum (("<"|"<="|">"|">="|"=="|"!=") sum)?
    sum     := prod (("+"|"-") prod)*    prod := unary (("*"|"/") unary)*
    unary   := "-" unary | post          post := atom ("[" (INT | NAME) "]")*
    atom    := NUMBER "%"? | "true" | "false" | NAME "(" args? ")" | NAME | "(" expr ")"
    args    := arg ("," arg)*            arg  := NAME "=" expr | expr

``5%`` is the number 0.05. ``#`` starts a comment to the end of the line; newlines are spaces.
"""

from __future__ import annotations

from typing import Any

import pyparsing as pp

from jts.strategy import ast as A
from jts.strategy.errors import DSLSyntaxError, Source

pp.ParserElement.enable_packrat()

KEYWORDS = {"and", "or", "not", "true", "false"}


class _Op:
    __slots__ = ("loc", "op")

    def __init__(self, op: str, loc: int) -> None:
        self.op = op
        self.loc = loc


def _op(expr: pp.ParserElement) -> pp.ParserElement:
    return expr.copy().set_parse_action(lambda s, loc, t: _Op(str(t[0]), loc))


def _fold(_s: str, _loc: int, toks: pp.ParseResults) -> Any:
    items = list(toks)
    node = items[0]
    for i in range(1, len(items), 2):
        op: _Op = items[i]
        node = A.Bin(op.op, node, items[i + 1], op.loc)
    return node


def _build() -> pp.ParserElement:
    expr = pp.Forward()
    ident = pp.Regex(r"[A-Za-z_][A-Za-z0-9_]*")
    name = ident.copy().add_condition(lambda t: t[0] not in KEYWORDS)
    number = pp.Regex(r"(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?)(\s*%)?")

    def num_action(_s: str, loc: int, t: pp.ParseResults) -> A.Num:
        text = str(t[0])
        if text.endswith("%"):
            return A.Num(float(text[:-1].strip()) / 100.0, loc)
        return A.Num(float(text), loc)

    number.set_parse_action(num_action)
    kw_true = pp.Keyword("true").set_parse_action(lambda s, loc, t: A.Bool(True, loc))
    kw_false = pp.Keyword("false").set_parse_action(lambda s, loc, t: A.Bool(False, loc))
    lpar, rpar = pp.Suppress("("), pp.Suppress(")")

    kwarg = (ident + pp.Suppress("=") + ~pp.Literal("=") + expr).set_parse_action(
        lambda s, loc, t: A.Kwarg(str(t[0]), t[1], loc))
    arg = kwarg | expr
    call = (ident + lpar + pp.Group(pp.Optional(pp.DelimitedList(arg))) + rpar)

    def call_action(_s: str, loc: int, t: pp.ParseResults) -> A.Call:
        args = [a for a in t[1] if not isinstance(a, A.Kwarg)]
        kws = [a for a in t[1] if isinstance(a, A.Kwarg)]
        return A.Call(str(t[0]), tuple(args), tuple(kws), loc)

    call.set_parse_action(call_action)
    var = name.copy().set_parse_action(lambda s, loc, t: A.Name(str(t[0]), loc))
    atom = number | kw_true | kw_false | call | var | (lpar + expr + rpar)

    index_int = pp.Regex(r"\d+").set_parse_action(lambda s, loc, t: A.Num(float(t[0]), loc))
    index = pp.Suppress("[") + (index_int | var) + pp.Suppress("]")

    def post_action(_s: str, loc: int, t: pp.ParseResults) -> Any:
        node = t[0]
        for b in t[1:]:
            node = A.Lookback(node, b, b.loc)
        return node

    post = (atom + pp.ZeroOrMore(index)).set_parse_action(post_action)
    unary = pp.Forward()
    neg = (pp.Literal("-") + unary).set_parse_action(lambda s, loc, t: A.Unary("-", t[1], loc))
    unary <<= neg | post
    prod = (unary + pp.ZeroOrMore(_op(pp.one_of("* /")) + unary)).set_parse_action(_fold)
    sum_ = (prod + pp.ZeroOrMore(_op(pp.one_of("+ -")) + prod)).set_parse_action(_fold)
    cmp_op = _op(pp.one_of("<= >= == != < >"))
    cmp = (sum_ + pp.Optional(cmp_op + sum_)).set_parse_action(_fold)
    not_ = pp.Forward()
    not_ <<= (pp.Keyword("not") + not_).set_parse_action(
        lambda s, loc, t: A.Unary("not", t[1], loc)) | cmp
    and_ = (not_ + pp.ZeroOrMore(_op(pp.Keyword("and")) + not_)).set_parse_action(_fold)
    or_ = (and_ + pp.ZeroOrMore(_op(pp.Keyword("or")) + and_)).set_parse_action(_fold)
    expr <<= or_
    expr.ignore(pp.python_style_comment)
    return expr


_GRAMMAR = _build()


def _strip_comments(text: str) -> str:
    """Blank out ``#`` comments (keeping offsets) so the end-of-input check sees them as space."""
    out = []
    for line in text.split("\n"):
        i = line.find("#")
        out.append(line if i < 0 else line[:i] + " " * (len(line) - i))
    return "\n".join(out)


def parse(text: str, src: Source | None = None) -> A.Node:
    """Parse one formula; raises :class:`DSLSyntaxError` (never anything else) on bad text."""
    src = src or Source(text)
    clean = _strip_comments(text)
    if not clean.strip():
        raise DSLSyntaxError("empty formula", src, 0,
                             "write a condition, e.g. `close > sma(close, 20)`")
    try:
        res = _GRAMMAR.parse_string(clean, parse_all=True)
    except pp.ParseBaseException as e:
        loc = e.loc
        tail = clean[loc:].lstrip()
        loc = len(clean) - len(tail)
        if not tail:
            raise DSLSyntaxError("unexpected end of formula", src, loc,
                                 "an operand or a closing parenthesis is missing") from None
        tok = tail.split()[0][:20]
        hint = _syntax_hint(clean, loc)
        raise DSLSyntaxError(f"syntax error at `{tok}`", src, loc, hint) from None
    except RecursionError:
        raise DSLSyntaxError("formula nests too deeply", src, 0, "simplify it") from None
    node: A.Node = res[0]
    return node


def _syntax_hint(text: str, loc: int) -> str:
    ch = text[loc]
    if text.count("(") != text.count(")"):
        return "unbalanced parentheses"
    if ch == "=" and text[loc: loc + 2] != "==":
        return "use `==` to compare"
    if text[loc: loc + 2] in ("&&", "||"):
        return "use `and` / `or`"
    if ch in "!&|^%$@~`'\"{};:\\?":
        return f"`{ch}` is not an operator here"
    return "expected an operator, a value or a closing parenthesis"
