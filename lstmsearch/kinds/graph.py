r"""A cell's equations as an expression graph, traced once from its ``update`` function.

A cell kind (:class:`lstmsearch.kinds.spec.CellKind`) writes its equations once, as a Python
function of symbolic values::

    def update(ops, x, hh, h, c):
        i = ops.sigmoid(x.i + hh.i)
        ...
        return {"i": i, ..., "c": c_new, "h": h_new}

where ``x.<gate>`` is the gate's input term ``W_ih x_t + b_ih`` (its rows), ``hh.<gate>`` its
recurrent term ``W_hh h_{t-1} + b_hh`` (or ``u * h_{t-1} + b_hh`` for an element-wise
recurrence; ``hh`` is None for a cell without one), ``h`` and ``c`` the previous state. The
vocabulary is ``+ - * /``, numbers, and ``ops.sigmoid``, ``ops.tanh``, ``ops.relu`` and
``ops.lerp(z, a, b) = (1 - z) a + z b``. Nothing may branch on a value.

:func:`trace` calls ``update`` once with :class:`Node` leaves and keeps the graph of what it
computed. Every executor of the project evaluates that graph with its own table of
operations (:meth:`Graph.evaluate`): the float64 reference and explain's traces with NumPy,
certify with interval arithmetic, the PyTorch export with torch, the CPU and CUDA code
generators with functions that write source text. Two rewrites serve the float32 kernels:

- :func:`fuse_rows`: ``x.g + hh.g`` becomes the leaf ``pre.g``, one accumulator
  ``b_ih + b_hh + W_ih x + W_hh h`` summed in the kernel's order (a gate whose terms are used
  apart, like the GRU's candidate ``x.n + r * hh.n``, keeps its two leaves);
- :func:`float32_forms`: the forms the float32 kernels compute, each an exact identity of real
  arithmetic evaluated by one function of :mod:`lstmsearch.kernels._fastmath`:
  ``sigmoid(a) * tanh(b)`` -> ``sigmoid_tanh(a, b)`` (``lstm_hidden``: one division),
  ``sigmoid(a) * c + sigmoid_tanh(b, d)`` -> ``lstm_cell(b, a, d, c)`` (one division, a
  saturated forget gate keeps c bit for bit), ``u * v + w`` -> ``fma(u, v, w)`` and
  ``a * b + c * d`` -> ``sum_of_products(a, b, c, d)`` (the kernels compile with ``contract``:
  LLVM may fuse a multiply-add, and with two products either one).
"""

from __future__ import annotations

from typing import Callable, Dict, Iterable, List, Mapping

from ..errors import LstmsearchError

#: The operations a cell's equations may use (besides leaves and constants).
PRIMITIVES = ("add", "sub", "mul", "div", "neg", "sigmoid", "tanh", "relu", "lerp")
#: Operations introduced by :func:`float32_forms`.
FUSED = ("fma", "sum_of_products", "sigmoid_tanh", "lstm_cell")
#: Leaf operations: input term, recurrent term, fused pre-activation (per gate), state, constant.
LEAVES = ("x", "hh", "pre", "h", "c", "const", "new")


class Node:
    """One value of the traced equations: ``op`` applied to ``args`` (a leaf has ``key``)."""

    __slots__ = ("op", "args", "key")

    def __init__(self, op: str, args=(), key=None):
        self.op, self.args, self.key = op, tuple(args), key

    def __add__(self, other):
        return Node("add", (self, lift(other)))

    def __radd__(self, other):
        return Node("add", (lift(other), self))

    def __sub__(self, other):
        return Node("sub", (self, lift(other)))

    def __rsub__(self, other):
        return Node("sub", (lift(other), self))

    def __mul__(self, other):
        return Node("mul", (self, lift(other)))

    def __rmul__(self, other):
        return Node("mul", (lift(other), self))

    def __truediv__(self, other):
        return Node("div", (self, lift(other)))

    def __rtruediv__(self, other):
        return Node("div", (lift(other), self))

    def __neg__(self):
        return Node("neg", (self,))

    def __bool__(self):
        raise LstmsearchError("a cell's equations cannot branch on a value (if/and/or/min/max); "
                              "write them with ops.relu, ops.lerp and arithmetic")

    __lt__ = __le__ = __gt__ = __ge__ = lambda self, other: self.__bool__()

    def __repr__(self):
        if self.op == "const":
            return repr(self.key)
        if self.op in LEAVES:
            return self.op if self.key is None else f"{self.op}.{self.key}"
        return f"{self.op}({', '.join(map(repr, self.args))})"


def lift(value) -> Node:
    """A node for ``value`` (a node, or a number as a constant)."""
    if isinstance(value, Node):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return Node("const", key=float(value))
    raise LstmsearchError(f"a cell's equations may use numbers and traced values, got {type(value).__name__}")


class Ops:
    """The functions a cell's ``update`` receives as ``ops``."""

    @staticmethod
    def sigmoid(a):
        """The logistic function 1 / (1 + exp(-a))."""
        return Node("sigmoid", (lift(a),))

    @staticmethod
    def tanh(a):
        return Node("tanh", (lift(a),))

    @staticmethod
    def relu(a):
        """max(a, 0); NaN stays NaN."""
        return Node("relu", (lift(a),))

    @staticmethod
    def lerp(z, a, b):
        """(1 - z) a + z b: the kernels compute a + z (b - a), PyTorch's GRU order."""
        return Node("lerp", (lift(z), lift(a), lift(b)))


OPS = Ops()


class Gates:
    """Named leaves, one per gate: ``x.i`` is ``Node("x", key="i")``."""

    def __init__(self, leaf: str, names: Iterable[str]):
        self._names = tuple(names)
        self._leaf = leaf

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        if name not in self._names:
            raise LstmsearchError(f"the cell has no gate {name!r}; its gates are {', '.join(self._names)}")
        return Node(self._leaf, key=name)


class Graph:
    """The traced equations: ``outputs`` maps names (gate values, ``h``, ``c``) to nodes."""

    def __init__(self, outputs: Mapping[str, Node]):
        self.outputs = dict(outputs)

    def nodes(self, names: Iterable[str] = None) -> List[Node]:
        """The nodes the outputs ``names`` (default: all) depend on, each once, operands first."""
        seen, order = set(), []

        def visit(n):
            if id(n) in seen:
                return
            seen.add(id(n))
            for a in n.args:
                visit(a)
            order.append(n)

        for name in (self.outputs if names is None else names):
            visit(self.outputs[name])
        return order

    def leaves(self, op: str, names: Iterable[str] = None) -> set:
        """Keys of the leaves ``op`` ("x", "hh", "pre") that the outputs ``names`` read."""
        return {n.key for n in self.nodes(names) if n.op == op}

    def reads(self, op: str, names: Iterable[str] = None) -> bool:
        """Whether the outputs ``names`` read the leaf ``op`` ("h" or "c")."""
        return any(n.op == op for n in self.nodes(names))

    def evaluate(self, table: Mapping[str, Callable], leaf: Callable, names: Iterable[str] = None,
                 visit: Callable = None) -> Dict[str, object]:
        """Evaluate the outputs ``names`` (default: all): ``leaf(node)`` gives a leaf's value,
        ``table[op](*values)`` an operation's. ``visit(node, value)``, if given, sees every
        computed value (the code generators name them). Each node is evaluated once."""
        memo = {}
        for n in self.nodes(names):
            if n.op in LEAVES:
                v = leaf(n)
            else:
                try:
                    fn = table[n.op]
                except KeyError:
                    raise LstmsearchError(f"this executor has no operation {n.op!r}") from None
                v = fn(*(memo[id(a)] for a in n.args))
                if visit is not None:
                    v = visit(n, v)
            memo[id(n)] = v
        return {k: memo[id(self.outputs[k])] for k in (self.outputs if names is None else names)}

    def stored(self, targets: Mapping[str, Node], keep: Iterable[str]) -> "Graph":
        """The outputs ``keep`` with each node of ``targets`` read as the leaf ``new.<its key>``
        (a kernel that stores those values first reads them back instead of computing them)."""
        by_id, memo = {id(n): k for k, n in targets.items()}, {}

        def walk(n):
            if id(n) in by_id:
                return Node("new", key=by_id[id(n)])
            got = memo.get(id(n))
            if got is None:
                got = Node(n.op, [walk(a) for a in n.args], n.key) if n.args else n
                memo[id(n)] = got
            return got

        return Graph({k: walk(self.outputs[k]) for k in keep})

    def rewrite(self, rule: Callable[[Node], Node]) -> "Graph":
        """A new graph with ``rule`` applied to every node, operands first (sharing kept)."""
        memo = {}

        def walk(n):
            got = memo.get(id(n))
            if got is None:
                got = rule(Node(n.op, [walk(a) for a in n.args], n.key) if n.args else n)
                memo[id(n)] = got
            return got

        return Graph({k: walk(v) for k, v in self.outputs.items()})


def trace(update: Callable, gates, recurrence: str, memory: bool) -> Graph:
    """Call ``update(OPS, x, hh, h, c)`` on symbolic leaves and check what it returns."""
    x = Gates("x", gates)
    hh = None if recurrence == "none" else Gates("hh", gates)
    out = update(OPS, x, hh, Node("h"), Node("c") if memory else None)
    if not isinstance(out, Mapping) or "h" not in out:
        raise LstmsearchError("a cell's update must return a dict of named values with 'h' (the new "
                              "hidden state)" + (" and 'c'" if memory else ""))
    if memory and "c" not in out:
        raise LstmsearchError("a cell with memory=True must return its new 'c' from update")
    if not memory and "c" in out:
        raise LstmsearchError("update returns 'c' but the cell has memory=False; set memory=True")
    return Graph({k: lift(v) for k, v in out.items()})


def _is(n: Node, op: str) -> bool:
    return n.op == op


def fuse_rows(graph: Graph) -> Graph:
    """``x.g + hh.g`` (either order) -> ``pre.g`` where gate g's two terms are read only
    together (see module doc)."""

    def pair(n):
        if n.op == "add" and {a.op for a in n.args} == {"x", "hh"} and n.args[0].key == n.args[1].key:
            return n.args[0].key
        return None

    fused = graph.rewrite(lambda n: Node("pre", key=pair(n)) if pair(n) is not None else n)
    apart = fused.leaves("x") | fused.leaves("hh")
    if not apart & fused.leaves("pre"):
        return fused
    return graph.rewrite(lambda n: Node("pre", key=pair(n)) if pair(n) is not None and pair(n) not in apart else n)


def float32_forms(graph: Graph) -> Graph:
    """The forms the float32 kernels compute (see module doc)."""

    def rule(n):
        a = n.args
        if n.op == "mul" and len(a) == 2:
            for s, t in (a, a[::-1]):
                if _is(s, "sigmoid") and _is(t, "tanh"):
                    return Node("sigmoid_tanh", (s.args[0], t.args[0]))
        if n.op == "add":
            for m, st in (a, a[::-1]):
                if _is(m, "mul") and _is(st, "sigmoid_tanh"):
                    for s, v in (m.args, m.args[::-1]):
                        if _is(s, "sigmoid"):
                            return Node("lstm_cell", (st.args[0], s.args[0], st.args[1], v))
            if _is(a[0], "mul") and _is(a[1], "mul"):
                return Node("sum_of_products", a[0].args + a[1].args)
            for m, w in (a, a[::-1]):
                if _is(m, "mul"):
                    return Node("fma", (m.args[0], m.args[1], w))
        return n

    return graph.rewrite(rule)
