"""The formula AST (frozen, position-carrying nodes) and a printer that round-trips.

Positions (``loc``, an offset into the formula text) are excluded from equality so that
``parse(to_source(tree)) == tree``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Num:
    value: float
    loc: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Bool:
    value: bool
    loc: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Name:
    id: str
    loc: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Lookback:
    expr: Node
    bars: Node  # Num (integer) or Name of a parameter
    loc: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Unary:
    op: str  # "-" or "not"
    expr: Node
    loc: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Bin:
    op: str  # + - * / < <= > >= == != and or
    left: Node
    right: Node
    loc: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Kwarg:
    name: str
    value: Node
    loc: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Node, ...]
    kwargs: tuple[Kwarg, ...] = ()
    loc: int = field(default=0, compare=False)


Node = Num | Bool | Name | Lookback | Unary | Bin | Call

_PREC = {"or": 1, "and": 2, "not": 3, "<": 4, "<=": 4, ">": 4, ">=": 4, "==": 4, "!=": 4,
         "+": 5, "-": 5, "*": 6, "/": 6}


def _num(v: float) -> str:
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    return repr(float(v))


def to_source(node: Node) -> str:
    """Print a formula; every binary and unary operation is parenthesized (round-trip safe)."""
    if isinstance(node, Num):
        return _num(node.value)
    if isinstance(node, Bool):
        return "true" if node.value else "false"
    if isinstance(node, Name):
        return node.id
    if isinstance(node, Lookback):
        return f"{_atom(node.expr)}[{to_source(node.bars)}]"
    if isinstance(node, Unary):
        sep = " " if node.op == "not" else ""
        return f"({node.op}{sep}{to_source(node.expr)})"
    if isinstance(node, Bin):
        return f"({to_source(node.left)} {node.op} {to_source(node.right)})"
    parts = [to_source(a) for a in node.args] + [f"{k.name}={to_source(k.value)}"
                                                 for k in node.kwargs]
    return f"{node.name}({', '.join(parts)})"


def _atom(node: Node) -> str:
    s = to_source(node)
    if isinstance(node, Num) and node.value < 0:
        return f"({s})"
    return s


def tree(node: Node, indent: str = "") -> str:
    """An indented, human-readable tree (``jts strategy explain``)."""
    if isinstance(node, (Num, Bool, Name)):
        return indent + to_source(node)
    if isinstance(node, Lookback):
        return f"{indent}lookback [{to_source(node.bars)}]\n" + tree(node.expr, indent + "  ")
    if isinstance(node, Unary):
        return f"{indent}{node.op}\n" + tree(node.expr, indent + "  ")
    if isinstance(node, Bin):
        return f"{indent}{node.op}\n" + tree(node.left, indent + "  ") + "\n" + tree(
            node.right, indent + "  ")
    lines = [f"{indent}{node.name}()"]
    lines += [tree(a, indent + "  ") for a in node.args]
    lines += [f"{indent}  {k.name}=\n" + tree(k.value, indent + "    ") for k in node.kwargs]
    return "\n".join(lines)
