#!/usr/bin/env python3
"""Differential cases for Tame's condition language, judged by Python itself.

Tame's policy conditions are written in a small Python-like expression
language. Wherever that language and Python 3 share a form, they must mean
the same thing. This script generates random conditions inside that shared
subset, a random request context for each, and asks CPython's own ``eval``
what the condition gives. A Rust test runs

    python3 tests/differential/gen.py --seed S --count N

evaluates every condition with Tame's engine over the same context, and
requires the same answer. Where Python raised, the engine only has to fail
cleanly (no panic); those cases are kept to a small share.

Output: exactly N lines on standard output, one JSON object each:

    {"id": 0, "condition": "...", "input": {"tool_name": ..., "tool_args": {...},
     "agent_id": ..., "user_id": ..., "metadata": {...}, "session": {...}},
     "expected": true | false | null, "python_error": null | "TypeError: ..."}

``expected`` is the bool Python produced (for a top-level and/or/not, the
truth value of its result); it is null exactly when Python raised, and then
``python_error`` is ``type(e).__name__ + ": " + str(e)``. Standard error
carries a one-line summary. The output depends only on the seed, and the
first k lines of a run do not depend on --count.

How a case is built: the context comes first, so every sub-expression is
generated knowing the concrete value it will have. That lets the generator
refuse, node by node, the spots where the language deliberately parts from
Python (True == 1, ordering lists, str() of a float, ...), instead of
guessing from static types. The generator keeps its own record of each
node's value; the final answer always comes from ``eval`` of the finished
text, and a case whose record disagrees with ``eval`` is thrown away (the
summary counts them; the count should be 0).
"""

import argparse
import json
import keyword
import math
import operator
import random
import re
import sys
import warnings

# Python operator precedence, low to high; only the order matters.
P_OR, P_AND, P_NOT, P_CMP, P_ADD, P_MUL, P_UNARY, P_ATOM = 1, 2, 3, 4, 6, 7, 8, 10

# Integers must stay exactly representable as doubles on the engine's side.
INT_LIMIT = 2 ** 53
# Float results are kept well inside the range where nothing odd happens.
FLOAT_LIMIT = 1e15
# Integer literals stay small, as in real policies.
LITERAL_LIMIT = 10 ** 6

ORDER_OPS = ("<", "<=", ">", ">=")
EQ_OPS = ("==", "!=")
CMP_FUNCS = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "in": lambda a, b: a in b,
    "not in": lambda a, b: a not in b,
}
ARITH_FUNCS = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "%": operator.mod,
}
ARITH_PREC = {"+": P_ADD, "-": P_ADD, "*": P_MUL, "/": P_MUL, "%": P_MUL}

# int()/float() of a string: only the plainest numeric spellings are in the
# shared subset. Python also accepts " 42", "1_000", "+5", "1e3", "inf", ...
INT_STRING = re.compile(r"-?[0-9]+")
FLOAT_STRING = re.compile(r"-?[0-9]+(\.[0-9]+)?")
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# ---------------------------------------------------------------- the data

TOOL_NAMES = ["read_file", "api_search", "send_email", "weird and name", "write_file"]
PATHS = [
    "/tmp/a.txt", "/etc/passwd", "/home/u/notes and more.md", "C:\\dir\\x", "",
    "/var/log/app.log", "./docs/Read Me.TXT", "  padded path \t", "/srv/café/über.txt",
    "/data/日本/ファイル.csv", "it's \"quoted\"", "line1\nline2\r\n", "/tmp/😀.png",
]
STRINGS = [
    "read_file", "send_email", "weird and name", "/tmp", "/etc", ".txt", ".md", "passwd",
    "notes", "and", "or", "not", "in", "is", "True", "None", "null", "true", "False",
    "brand and order", "not in here", "x is None", "a or b", "if not", "it's", 'say "hi"',
    "C:\\dir", "\\", "line1\nline2", "tab\there", "\r\n", "ABC", "abc", "café", "Über",
    "日本", "😀", "Zoë", "", " ", "  padded  ", "gpt-4", "gpt", "GPT-4", "claude", "prod",
    "dev", "42", "-7", "2.5", "abc123", "Data and ML", "/tmp/a.txt", "/etc/passwd", "A",
]
NUMERIC_STRINGS = ["42", "-7", "0", "2.5", "-0.5", "100", "3.0"]
BAD_NUMERIC_STRINGS = ["abc", "", "12a", "1.2.3", "-", "four"]
FLOATS = [0.0, 0.1, 0.5, 1.5, 2.5, 10.0, -3.75, 99.99, 0.25, 3.0, -0.5, 1000.0, 0.3333]
# Exponent spellings, written out so their text is exactly what we mean.
FLOAT_TEXTS = [("1e3", 1000.0), ("2.5e2", 250.0), ("1.5e-3", 0.0015), ("1e0", 1.0)]
# Keys that are looked up on objects that lack them.
ABSENT_KEYS = [
    "brand", "order", "island", "notes", "index", "android", "missing", "path", "flag",
    "nope", "not here", "inner", "x", "read_file", "write_file", "send_email", "deep",
]


def gen_scalar(rng):
    r = rng.random()
    if r < 0.35:
        return rng.randint(-20, 60)
    if r < 0.55:
        return rng.choice(FLOATS)
    if r < 0.92:
        return rng.choice(STRINGS)
    if r < 0.96:
        return None
    return rng.choice([True, False])


def gen_input(rng):
    """A fresh request context; every key but the session's may be absent."""

    def maybe(p):
        return rng.random() < p

    args = {}
    if maybe(0.8):
        args["path"] = rng.choice(PATHS)
    if maybe(0.35):
        args["sensitive"] = rng.choice([True, False, "true", "false", 1, 0, None])
    if maybe(0.5):
        args["count"] = rng.randint(-5, 120)
    if maybe(0.4):
        args["ratio"] = rng.choice(FLOATS)
    if maybe(0.5):
        args["items"] = [gen_scalar(rng) for _ in range(rng.randint(0, 5))]
    if maybe(0.4):
        nested = {}
        if maybe(0.8):
            nested["inner"] = gen_scalar(rng)
        if maybe(0.6):
            nested["deep"] = {"x": gen_scalar(rng)} if maybe(0.8) else {}
        args["nested"] = nested
    if maybe(0.4):
        args["flag"] = rng.choice([True, False])
    if maybe(0.4):
        args["model"] = rng.choice(["gpt-4", "gpt-4-turbo", "claude", "GPT-4"])
    if maybe(0.25):
        args["brand"] = rng.choice(["Acme and Sons", "not in here", "Or Else Ltd", "", "Brandé"])
    if maybe(0.25):
        args["order"] = rng.choice([1, 42, -3, "first", "is None"])
    if maybe(0.2):
        args["notes"] = rng.choice(["none", "True or False", "see index", ""])
    if maybe(0.15):
        args["index"] = rng.randint(0, 9)
    if maybe(0.15):
        args["island"] = rng.choice(["Skye", "Île d'Yeu", "Notre and Dame"])
    if maybe(0.15):
        args["android"] = rng.choice([True, False])
    if maybe(0.3):
        args["amount"] = rng.choice(NUMERIC_STRINGS + BAD_NUMERIC_STRINGS + ["1e3", " 7"])
    if maybe(0.2):
        args["records"] = [
            {"name": rng.choice(STRINGS), "size": rng.randint(0, 500)}
            for _ in range(rng.randint(0, 3))
        ]
    if maybe(0.15):
        args["tags"] = rng.sample(["a", "b and c", "prod", "é", "not"], rng.randint(0, 4))
    if maybe(0.12):
        args["notes and more"] = rng.choice(["yes", "or no", ""])
    if maybe(0.1):
        args["it's"] = rng.randint(0, 5)

    meta = {}
    if maybe(0.5):
        meta["sensitive"] = rng.choice([True, False])
    if maybe(0.5):
        meta["env"] = rng.choice(["prod", "dev", "staging", ""])
    if maybe(0.3):
        meta["team"] = rng.choice(["Data and ML", "Ops", "in-house"])
    if maybe(0.4):
        meta["priority"] = rng.randint(0, 10)
    if maybe(0.3):
        meta["score"] = rng.choice(FLOATS)
    if maybe(0.3):
        meta["labels"] = rng.sample(["pii", "internal", "is public", "ü"], rng.randint(0, 3))
    if maybe(0.3):
        owner = {"name": rng.choice(["alice", "Zoë", "bob"])}
        if maybe(0.5):
            owner["dept"] = rng.choice(["legal", "eng"])
        meta["owner"] = owner
    if maybe(0.15):
        meta["région"] = rng.choice(["EU", "US"])
    if maybe(0.1):
        meta["日本"] = "はい"
    if maybe(0.15):
        meta["trace"] = None

    allowed, denied, approvals = rng.randint(0, 20), rng.randint(0, 10), rng.randint(0, 5)
    counts = {}
    for name in TOOL_NAMES:
        if maybe(0.4):
            counts[name] = rng.randint(0, 12)
    session = {
        "id": "s-%d" % rng.randint(1, 999),
        "action_count": allowed + denied + approvals,
        "allowed_count": allowed,
        "denied_count": denied,
        "approval_count": approvals,
        "tool_counts": counts,
        "estimated_cost": rng.choice([0.0, 1.5, 0.25, 12.75, round(rng.uniform(0, 50), 2)]),
        "started_at": 1700000000 + rng.randint(0, 10 ** 6),
    }
    return {
        "tool_name": rng.choice(TOOL_NAMES),
        "tool_args": args,
        "agent_id": rng.choice(["agent-7", "bot and friend", "Agent_X", "", None]),
        "user_id": rng.choice(["u-1", "alice", "Zoë", "null", None]),
        "metadata": meta,
        "session": session,
    }


# ------------------------------------------------- the evaluation harness


class W(dict):
    """A JSON object as conditions see it: `a.b` and `a["b"]` both read key
    "b", and a missing key reads as None.

    Attribute access is taken over entirely (not just `__getattr__`), since
    otherwise `tool_args.items` or `metadata.keys` would find dict's methods
    instead of the keys. Dunder names stay ordinary so that Python's own
    machinery keeps working. Code here must therefore never call a method
    on a W instance (use `dict.keys(w)`, not `w.keys()`).
    """

    __slots__ = ()

    def __getattribute__(self, name):
        if name.startswith("__"):
            return object.__getattribute__(self, name)
        return dict.get(self, name)

    def __missing__(self, key):
        return None


def wrap(value):
    if isinstance(value, dict):
        return W((k, wrap(v)) for k, v in value.items())
    if isinstance(value, list):
        return [wrap(v) for v in value]
    return value


def make_names(data):
    names = {
        "len": len, "int": int, "float": float, "str": str, "any": any, "all": all,
        "true": True, "false": False, "null": None,
        "True": True, "False": False, "None": None,
    }
    for key in ("tool_name", "agent_id", "user_id"):
        names[key] = data[key]
    for key in ("tool_args", "metadata", "session"):
        names[key] = wrap(data[key])
    return names


def python_eval(text, names):
    """(value, None) or (None, exception); a SyntaxError means a generator bug."""
    # A compile-time warning (`"x" is None`, an unknown escape) would mean the
    # text is not plain, current Python: turn it into a SyntaxError.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        code = compile(text, "<condition>", "eval")
    try:
        return eval(code, {"__builtins__": {}}, names), None
    except Exception as exc:  # any runtime error is a legitimate outcome
        return None, exc


# --------------------------------------------- values and their semantics


class Err:
    """The value of a sub-expression that raises when evaluated."""

    __slots__ = ("exc",)

    def __init__(self, exc):
        self.exc = exc


def is_err(v):
    return isinstance(v, Err)


def is_num(v):
    return type(v) in (int, float)


def static_clash(a, b):
    """Two non-null operands of different types (numbers aside): the
    language may see the clash before the policy runs and refuse it, even
    where Python, short-circuiting, would never evaluate it."""
    cat = lambda v: "num" if is_num(v) else kind(v)
    return a is not None and b is not None and cat(a) != cat(b)


def err_operand_ok(a, b):
    """An operand that raises still has a type the language may see before
    the policy runs (int() is a number, str() a string): combine it only with
    null or another raising operand, so no such clash can arise."""
    other = b if is_err(a) else a
    return other is None or is_err(other)


def kind(v):
    if is_err(v):
        return "err"
    if v is None:
        return "none"
    if type(v) is bool:
        return "bool"
    if type(v) is int:
        return "int"
    if type(v) is float:
        return "float"
    if type(v) is str:
        return "str"
    if isinstance(v, list):
        return "list"
    return "obj"


def apply(fn, *args):
    """Python's result for fn(*args), operands evaluated left to right."""
    for a in args:
        if is_err(a):
            return a
    try:
        return fn(*args)
    except Exception as exc:
        return Err(exc)


def lang_eq(a, b):
    """Equality as the condition language defines it: like Python's, except
    that a bool equals only a bool (in Python True == 1)."""
    if type(a) is bool or type(b) is bool:
        return type(a) is type(b) and a == b
    if is_num(a) and is_num(b):
        return a == b
    if a is None or b is None:
        return a is b
    if type(a) is str and type(b) is str:
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(lang_eq(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return dict.keys(a) == dict.keys(b) and all(
            lang_eq(dict.__getitem__(a, k), dict.__getitem__(b, k)) for k in dict.keys(a)
        )
    return False


def mixes_bool_num(a, b):
    """Whether comparing a with b would, anywhere inside, set a bool against
    a number. Even where both languages happen to agree on the answer, such
    comparisons are left out: they are not in the shared subset."""
    if type(a) is bool:
        return is_num(b)
    if type(b) is bool:
        return is_num(a)
    if isinstance(a, list) and isinstance(b, list):
        return any(mixes_bool_num(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return any(
            mixes_bool_num(dict.__getitem__(a, k), dict.__getitem__(b, k))
            for k in dict.keys(a)
            if dict.__contains__(b, k)
        )
    return False


def num_in_range(v):
    if type(v) is int:
        return abs(v) <= INT_LIMIT
    return math.isfinite(v) and abs(v) <= FLOAT_LIMIT


class Node:
    """Source text, the value Python gives it, its precedence, and what it
    is (tag); `depth` counts and/or/not nesting."""

    __slots__ = ("text", "val", "prec", "tag", "depth")

    def __init__(self, text, val, prec=P_ATOM, tag="atom", depth=0):
        self.text, self.val, self.prec, self.tag, self.depth = text, val, prec, tag, depth


class Reject(Exception):
    """Raised when a node cannot be built legally; the caller retries."""


# ------------------------------------------------------- the generator


class CaseGen:
    """Builds one condition over one concrete context.

    `risky` cases may use constructs that raise in Python (a method on a
    missing field, None in arithmetic, division by zero, int("abc"), ...);
    other cases never raise, so the share of error cases stays small.
    """

    def __init__(self, rng, data, risky):
        self.rng = rng
        self.names = make_names(data)
        self.risky = risky
        self.feat = set()
        self.budget = 0
        self.by_kind = {}
        self.missing = []
        self.lists = []
        for root in ("tool_name", "agent_id", "user_id", "tool_args", "metadata", "session"):
            self._walk(root, (), self.names[root], 0)

    # ---- the context's fields

    def _walk(self, root, steps, value, depth):
        self.by_kind.setdefault(kind(value), []).append((root, steps))
        if depth >= 4:
            return
        if isinstance(value, dict):
            for key in dict.keys(value):
                self._walk(root, steps + (("k", key),), dict.__getitem__(value, key), depth + 1)
            # The session's own fields are fixed: the language refuses any other.
            absent = [] if root == "session" and not steps else self.rng.sample(ABSENT_KEYS, 3)
            for key in absent:
                if key not in value:
                    self.missing.append((root, steps + (("k", key),)))
        elif isinstance(value, list):
            self.lists.append((root, steps, len(value)))
            for i, item in enumerate(value):
                self._walk(root, steps + (("i", i, len(value)),), item, depth + 1)

    def path_node(self, root, steps):
        """Render a field path, choosing `.key` or `["key"]` and a positive or
        negative index at random, and evaluate it exactly as written."""
        text, val = root, self.names[root]
        for step in steps:
            if step[0] == "k":
                key = step[1]
                if is_ident(key) and self.rng.random() < 0.65:
                    text += "." + key
                    val = apply(getattr, val, key)
                else:
                    text += "[" + self.str_text(key, 0.1) + "]"
                    val = apply(operator.getitem, val, key)
            else:
                # ("i", i, n): item i of n; ("o", k, n): k places past either end.
                tag, i, n = step
                if tag == "i":
                    idx = i if self.rng.random() < 0.6 else i - n
                else:
                    idx = n + i if self.rng.random() < 0.5 else -(n + 1 + i)
                text += "[%d]" % idx
                val = apply(operator.getitem, val, idx)
        return Node(text, val, P_ATOM, "field")

    def field(self, kinds):
        """A present field whose value is of one of `kinds`, or None."""
        cands = [p for k in kinds for p in self.by_kind.get(k, ())]
        if not cands:
            return None
        return self.path_node(*self.rng.choice(cands))

    def missing_field(self):
        """A field absent from the data (reads as None); in risky cases
        sometimes one step deeper, which raises in Python."""
        if not self.missing:
            return None
        root, steps = self.rng.choice(self.missing)
        r = self.rng.random()
        if self.risky and r < 0.15:
            steps = steps + (("k", self.rng.choice(["x", "deeper"])),)
        elif self.risky and r < 0.25 and self.lists:
            # Past the end of a list: Python raises where a key would be None.
            root, steps, n = self.rng.choice(self.lists)
            self.feat.add("out-of-range")
            return self.path_node(root, steps + (("o", self.rng.randint(0, 2), n),))
        self.feat.add("missing")
        return self.path_node(root, steps)

    def any_field(self, p_missing=0.2):
        node = None
        if self.rng.random() < p_missing:
            node = self.missing_field()
        if node is None:
            node = self.field(("bool", "int", "float", "str", "list", "obj", "none"))
        return node

    # ---- literals

    def str_text(self, s, esc=0.15):
        """Python source for the string s, with a random quote style and a
        random mix of escapes and raw characters."""
        rng = self.rng
        q = rng.choice("\"'")
        out = [q]
        for ch in s:
            o = ord(ch)
            if ch == "\\":
                out.append("\\\\")
            elif ch == q:
                out.append("\\" + q)
            elif ch in "\"'":
                out.append("\\" + ch if rng.random() < 0.3 else ch)
            elif ch == "\n":
                out.append("\\n")
            elif ch == "\t":
                out.append("\\t")
            elif ch == "\r":
                out.append("\\r")
            elif o < 0x20 or o == 0x7F:
                out.append("\\x%02x" % o)
            elif o > 0x7F and rng.random() < esc * 3:
                if o < 0x100 and rng.random() < 0.5:
                    form, width = "x", 2
                elif o < 0x10000 and rng.random() < 0.7:
                    form, width = "u", 4
                else:
                    form, width = "U", 8
                digits = "%0*x" % (width, o)
                out.append("\\" + form + (digits.upper() if rng.random() < 0.5 else digits))
            elif ch.isalnum() and o < 0x80 and rng.random() < esc * 0.2:
                out.append(rng.choice(["\\x%02x" % o, "\\u%04x" % o]))
            else:
                out.append(ch)
        out.append(q)
        return "".join(out)

    def str_lit(self, s):
        return Node(self.str_text(s), s, P_ATOM, "lit")

    def num_lit(self, v, exact=False):
        """A numeric literal; unless `exact`, out-of-shape values are swapped
        for small ones and a float is now and then one in exponent form."""
        rng = self.rng
        if type(v) is float and not exact and rng.random() < 0.05:
            text, v = rng.choice(FLOAT_TEXTS)
            return Node(text, v, P_ATOM, "lit")
        if type(v) is int:
            if abs(v) >= LITERAL_LIMIT:
                v = rng.randint(-50, 200)
            text = str(abs(v))
        else:
            if not math.isfinite(v) or abs(v) >= LITERAL_LIMIT:
                v = rng.choice(FLOATS)
            text = repr(abs(v))
            if "e" in text:  # tiny magnitudes print in exponent form
                v, text = 0.5, "0.5"
        if v < 0:
            return Node("-" + text, v, P_UNARY, "lit")
        # -0.0 prints as 0.0 here, so the recorded value must be +0.0.
        return Node(text, abs(v) if type(v) is float else v, P_ATOM, "lit")

    def rand_num(self):
        r = self.rng.random()
        if r < 0.6:
            return self.rng.randint(-10, 100)
        if r < 0.7:
            return self.rng.randint(-999999, 999999)
        return self.rng.choice(FLOATS)

    def num_near(self, v):
        """A number likely to make a comparison with v go either way."""
        rng = self.rng
        if not is_num(v) or rng.random() < 0.2:
            return self.num_lit(self.rand_num())
        if type(v) is int:
            c = rng.choice([v, v, v + 1, v - 1, -v, v * 2, 0, float(v), v + 0.5])
        else:
            c = rng.choice([v, v, v + 0.5, v - 0.25, round(v), round(v, 1), -v, 0])
        return self.num_lit(c)

    def str_near(self, s):
        """A string likely to match s, or be a prefix/suffix/part of it."""
        rng = self.rng
        if type(s) is not str or rng.random() < 0.25:
            return rng.choice(STRINGS)
        n = len(s)
        i, j = sorted((rng.randint(0, n), rng.randint(0, n)))
        return rng.choice([s, s, s.upper(), s.lower(), s[:j], s[i:], s[i:j], s + "x", "x" + s])

    def bool_lit(self, v=None):
        if v is None:
            v = self.rng.random() < 0.5
        text = self.rng.choice(["True", "true"] if v else ["False", "false"])
        return Node(text, v, P_ATOM, "lit")

    def none_lit(self):
        return Node(self.rng.choice(["None", "null"]), None, P_ATOM, "lit")

    def value_lit(self, v):
        """A literal for a data value, or None if it has no literal form."""
        k = kind(v)
        if k == "bool":
            return self.bool_lit(v)
        if k == "none":
            return self.none_lit()
        if k in ("int", "float"):
            node = self.num_lit(v, exact=True)
            return node if node.val == v and type(node.val) is type(v) else None
        if k == "str":
            return self.str_lit(v)
        if k == "list":
            parts = [self.value_lit(x) for x in v]
            if any(p is None for p in parts):
                return None
            return Node("[" + ", ".join(p.text for p in parts) + "]",
                        [p.val for p in parts], P_ATOM, "lit")
        return None

    def list_lit(self, elems=None):
        rng = self.rng
        if elems is None:
            elems = []
            for _ in range(rng.randint(0, 4)):
                r = rng.random()
                if r < 0.3:
                    elems.append(rng.choice(STRINGS))
                elif r < 0.55:
                    elems.append(self.rand_num())
                elif r < 0.8:
                    elems.append(rng.random() < 0.5)
                elif r < 0.9:
                    elems.append(None)
                else:
                    elems.append(rng.choice([[], [1, "a"], [True]]))
        node = self.value_lit(elems)
        return node if node is not None else Node("[]", [], P_ATOM, "lit")

    # ---- layout

    def paren(self, node, min_prec, extra=0.0):
        """Parenthesize when precedence demands it, and now and then when it
        does not, so the parser sees both."""
        if node.prec < min_prec or self.rng.random() < extra:
            return Node("(" + node.text + ")", node.val, P_ATOM, node.tag, node.depth)
        return node

    def op_text(self, op):
        if op in ("in", "not in", "is", "is not") or self.rng.random() < 0.85:
            return " %s " % op
        return op

    # ---- numbers

    def g_num(self, depth):
        rng = self.rng
        r = rng.random()
        if depth > 0 and r < 0.32:
            return self.g_arith(depth)
        if depth > 0 and r < 0.37:
            return self.g_neg(depth)
        if r < 0.55:
            node = self.field(("int", "float"))
            if node is not None:
                return node
        elif r < 0.64:
            return self.g_len(depth)
        elif r < 0.72:
            return self.g_convert(depth, rng.choice(["int", "float"]))
        elif r < 0.75 and self.risky:
            node = self.missing_field()
            if node is not None:
                return node
        return self.num_lit(self.rand_num())

    def g_arith(self, depth):
        rng = self.rng
        self.feat.add("arith")
        for _ in range(6):
            op = rng.choice("++--**//%%")
            a = self.g_num(depth - 1)
            if op in "/%" and rng.random() < 0.7:
                b = self.num_lit(rng.choice([2, 3, -3, 7, 0.5, 2.5, -4, 10]))
            elif op == "*" and rng.random() < 0.5:
                b = self.num_lit(rng.choice([2, -1, 3, 0.5, 1.5, 10, 0]))
            else:
                b = self.g_num(depth - 1)
            if rng.random() < 0.3:
                a, b = b, a
            val = apply(ARITH_FUNCS[op], a.val, b.val)
            if not self.arith_ok(a.val, b.val, val):
                continue
            p = ARITH_PREC[op]
            a, b = self.paren(a, p, 0.05), self.paren(b, p + 1, 0.05)
            return Node("%s %s %s" % (a.text, op, b.text), val, p, "arith")
        return self.num_lit(self.rand_num())

    def arith_ok(self, a, b, val):
        if is_err(a) or is_err(b):
            return err_operand_ok(a, b)
        if is_err(val):
            # Mismatched operand types may be refused when the policy loads.
            return self.risky and not static_clash(a, b) and self.rng.random() < 0.5
        if is_num(a) and is_num(b):
            return num_in_range(val)
        # `+` of two strings is the only non-numeric arithmetic in the subset
        # (lists concatenate and strings repeat in Python: both excluded).
        return type(a) is str and type(b) is str and type(val) is str

    def g_neg(self, depth):
        for _ in range(4):
            x = self.g_num(depth - 1)
            if type(x.val) is bool or kind(x.val) in ("str", "list", "obj"):
                continue
            if not self.risky and not is_num(x.val):
                continue
            # "--3" would be legal Python but reads like a typo; keep it explicit.
            x = self.paren(x, P_UNARY, 0.1)
            if x.text.startswith("-"):
                x = self.paren(x, P_ATOM + 1)
            self.feat.add("arith")
            return Node("-" + x.text, apply(operator.neg, x.val), P_UNARY, "arith")
        return self.num_lit(self.rand_num())

    def g_len(self, depth):
        rng = self.rng
        self.feat.add("len")
        r = rng.random()
        arg = None
        if r < 0.55:
            arg = self.field(("str", "list", "obj"))
        elif r < 0.75:
            arg = self.g_str(max(depth - 1, 0))
        elif r < 0.85:
            arg = self.list_lit()
        elif self.risky:
            arg = self.missing_field() or self.field(("int", "none"))
        if arg is None or kind(arg.val) not in ("str", "list", "obj", "err", "none", "int"):
            arg = self.str_lit(rng.choice(STRINGS))
        if not self.risky and kind(arg.val) not in ("str", "list", "obj"):
            arg = self.str_lit(rng.choice(STRINGS))
        return Node("len(%s)" % arg.text, apply(len, arg.val), P_ATOM, "call")

    def g_convert(self, depth, fn):
        """int(x) or float(x) over numbers and plain numeric strings."""
        rng = self.rng
        self.feat.add("convert")
        func = int if fn == "int" else float
        pattern = INT_STRING if fn == "int" else FLOAT_STRING
        for _ in range(4):
            r = rng.random()
            if r < 0.4:
                arg = self.g_num(max(depth - 1, 0))
            elif r < 0.65:
                arg = self.str_lit(rng.choice(NUMERIC_STRINGS))
            elif r < 0.85:
                arg = self.field(("str",)) or self.str_lit(rng.choice(NUMERIC_STRINGS))
            elif self.risky:
                arg = rng.choice([self.str_lit(rng.choice(BAD_NUMERIC_STRINGS)),
                                  self.missing_field() or self.none_lit()])
            else:
                continue
            val = apply(func, arg.val)
            a = arg.val
            if is_err(a):
                pass
            elif is_err(val):
                if not self.risky:
                    continue
            elif type(a) is bool:
                continue
            elif type(a) is str and not pattern.fullmatch(a):
                continue  # Python accepts it, the language need not
            elif not num_in_range(val):
                continue
            return Node("%s(%s)" % (fn, arg.text), val, P_ATOM, "call")
        return self.num_lit(self.rand_num())

    # ---- strings

    def g_str(self, depth):
        rng = self.rng
        r = rng.random()
        if r < 0.38:
            node = self.field(("str",))
            if node is not None:
                return node
        elif r < 0.5 and depth > 0:
            return self.g_strmethod(depth)
        elif r < 0.58:
            return self.g_strcall(depth)
        elif r < 0.66 and depth > 0:
            for _ in range(3):
                a, b = self.g_str(depth - 1), self.g_str(depth - 1)
                if self.risky and rng.random() < 0.15:
                    b = self.g_num(0)
                val = apply(operator.add, a.val, b.val)
                if self.arith_ok(a.val, b.val, val):
                    a, b = self.paren(a, P_ADD, 0.05), self.paren(b, P_ADD + 1, 0.05)
                    return Node("%s + %s" % (a.text, b.text), val, P_ADD, "arith")
        elif r < 0.7 and self.risky:
            node = self.missing_field()
            if node is not None:
                return node
        return self.str_lit(rng.choice(STRINGS))

    def g_strmethod(self, depth):
        self.feat.add("strmethod")
        recv = self.g_str(depth - 1)
        if kind(recv.val) not in ("str", "none", "err"):
            recv = self.str_lit(self.rng.choice(STRINGS))
        name = self.rng.choice(["lower", "upper", "strip"])
        recv = self.paren(recv, P_ATOM, 0.1)
        val = apply(lambda s: getattr(s, name)(), recv.val)
        return Node("%s.%s()" % (recv.text, name), val, P_ATOM, "call")

    def g_strcall(self, depth):
        """str(x), only for strings, ints, bools and None (str of a float or a
        container is formatted differently by the language)."""
        rng = self.rng
        self.feat.add("convert")
        r = rng.random()
        if r < 0.35:
            arg = self.field(("int", "bool", "none", "str")) or self.g_num(0)
        elif r < 0.5:
            arg = self.missing_field() or self.none_lit()
        elif r < 0.65:
            arg = self.bool_lit()
        else:
            arg = self.g_num(max(depth - 1, 0))
        if kind(arg.val) not in ("str", "int", "bool", "none", "err"):
            arg = self.num_lit(rng.randint(-50, 50))
        return Node("str(%s)" % arg.text, apply(str, arg.val), P_ATOM, "call")

    # ---- boolean leaves

    def check_cmp(self, op, a, b):
        """False where Python's answer is not the language's answer."""
        if is_err(a) or is_err(b):
            return op in EQ_OPS or err_operand_ok(a, b)
        res = apply(CMP_FUNCS[op], a, b)
        if is_err(res):
            # A number ordered against a string, or a number looked up in a
            # string, may be refused when the policy loads (the language sees
            # both types beforehand), even where Python never reaches it.
            if op in ORDER_OPS and static_clash(a, b):
                return False
            if op not in EQ_OPS and op not in ORDER_OPS and type(b) is str and a is not None:
                return False
            return self.risky
        if op in EQ_OPS:
            return not mixes_bool_num(a, b) and lang_eq(a, b) == (a == b)
        if op in ORDER_OPS:
            return (is_num(a) and is_num(b)) or (type(a) is str and type(b) is str)
        # in / not in
        if type(b) is str:
            return type(a) is str
        if isinstance(b, list):
            if any(mixes_bool_num(a, x) for x in b):
                return False
            return any(lang_eq(a, x) for x in b) == (a in b)
        if isinstance(b, dict):
            return type(a) is str
        return False

    def cmp_node(self, op, a, b):
        if not self.check_cmp(op, a.val, b.val):
            raise Reject()
        a, b = self.paren(a, P_CMP + 1), self.paren(b, P_CMP + 1)
        val = apply(CMP_FUNCS[op], a.val, b.val)
        return Node(a.text + self.op_text(op) + b.text, val, P_CMP, "cmp")

    def g_compare(self, depth):
        rng = self.rng
        r = rng.random()
        if r < 0.38:
            a = self.g_num(depth)
            b = self.num_near(a.val) if rng.random() < 0.65 else self.g_num(depth)
            op = rng.choice(EQ_OPS + ORDER_OPS + ORDER_OPS)
        elif r < 0.68:
            a = self.g_str(depth)
            b = self.str_lit(self.str_near(a.val)) if rng.random() < 0.7 else self.g_str(depth)
            op = rng.choice(EQ_OPS * 3 + ORDER_OPS)
        elif r < 0.9:
            a = self.any_field()
            b = self.eq_partner(a.val)
            op = rng.choice(EQ_OPS)
        elif r < 0.97:
            a = self.g_strict_bool(depth)
            b = self.bool_lit() if rng.random() < 0.6 else self.g_strict_bool(depth)
            op = rng.choice(EQ_OPS)
        else:
            # Ordering across kinds (None < 1, "a" < 2) raises in Python.
            if not self.risky:
                raise Reject()
            a = self.any_field(0.5)
            b = self.g_num(0) if rng.random() < 0.5 else self.g_str(0)
            op = rng.choice(ORDER_OPS)
        if rng.random() < 0.3:
            a, b = b, a
        return self.cmp_node(op, a, b)

    def eq_partner(self, v):
        """Something worth comparing v with, by == or !=."""
        rng = self.rng
        k = kind(v)
        r = rng.random()
        if r < 0.2:
            return self.any_field()
        if k == "list" and r < 0.6:
            node = self.value_lit(v) if rng.random() < 0.5 else None
            return node or self.list_lit()
        if k == "bool":
            return self.bool_lit()
        if k in ("int", "float"):
            return self.num_near(v)
        if k == "str":
            return self.str_lit(self.str_near(v))
        if k == "obj" and r < 0.7:
            return self.field(("obj",)) or self.none_lit()
        r = rng.random()
        if r < 0.5:
            return self.none_lit()
        if r < 0.75:
            return self.str_lit(rng.choice(["None", "null", "", "x"]))
        return self.list_lit([])

    def g_chain(self, depth):
        """a < b <= c style chains over numbers or over strings."""
        rng = self.rng
        self.feat.add("chain")
        n = 3 if rng.random() < 0.85 else 4
        if rng.random() < 0.7:
            mid = self.g_num(depth)
            operands = [self.num_near(mid.val) for _ in range(n - 1)]
            ops = [rng.choice(ORDER_OPS + ORDER_OPS + EQ_OPS) for _ in range(n - 1)]
        else:
            mid = self.g_str(depth)
            operands = [self.str_lit(self.str_near(mid.val)) for _ in range(n - 1)]
            ops = [rng.choice(ORDER_OPS + EQ_OPS) for _ in range(n - 1)]
        # Give the chain an ascending shape so it comes out true sometimes.
        operands.insert(rng.randint(0, n - 1), mid)
        if rng.random() < 0.5:
            try:
                operands.sort(key=lambda x: x.val)
                ops = [rng.choice(("<", "<=")) for _ in range(n - 1)]
            except TypeError:
                pass
        vals = [x.val for x in operands]
        for op, a, b in zip(ops, vals, vals[1:]):
            if not self.check_cmp(op, a, b):
                raise Reject()
        val = chain_value(ops, vals)
        parts = [self.paren(x, P_CMP + 1).text for x in operands]
        text = parts[0]
        for op, part in zip(ops, parts[1:]):
            text += self.op_text(op) + part
        return Node(text, val, P_CMP, "cmp")

    def g_membership(self, depth):
        rng = self.rng
        self.feat.add("in")
        op = rng.choice(["in", "in", "not in"])
        r = rng.random()
        if r < 0.3:
            cont = self.g_str(depth)
            s = cont.val if type(cont.val) is str else ""
            item = self.str_lit(self.str_near(s))
            if self.risky and rng.random() < 0.1:
                item = self.g_num(0)
        elif r < 0.65:
            cont = self.field(("list",)) if rng.random() < 0.6 else None
            if cont is not None:
                elems = cont.val
                if elems and rng.random() < 0.6:
                    item = self.value_lit(rng.choice(elems)) or self.any_field()
                else:
                    item = self.any_field() if rng.random() < 0.5 else None
                    item = item or self.value_lit(gen_scalar(rng)) or self.any_field()
            else:
                item = self.any_field()
                pool = [gen_scalar(rng) for _ in range(rng.randint(0, 3))]
                if rng.random() < 0.6 and kind(item.val) in ("str", "int", "float", "none", "bool"):
                    pool.insert(rng.randint(0, len(pool)), item.val)
                cont = self.list_lit(pool)
        elif r < 0.95:
            cont = self.field(("obj",))
            if cont is None:
                raise Reject()
            keys = list(dict.keys(cont.val))
            if keys and rng.random() < 0.55:
                item = self.str_lit(rng.choice(keys))
            elif rng.random() < 0.3:
                item = self.field(("str",)) or self.str_lit(rng.choice(ABSENT_KEYS))
            else:
                item = self.str_lit(rng.choice(ABSENT_KEYS))
        else:
            if not self.risky:
                raise Reject()
            item = self.str_lit(rng.choice(STRINGS))
            cont = self.missing_field() or self.field(("int", "none"))
            if cont is None:
                raise Reject()
        return self.cmp_node(op, item, cont)

    def g_is_none(self):
        self.feat.add("is")
        node = self.any_field(0.4)
        op = self.rng.choice(["is", "is not"])
        text = node.text + " %s %s" % (op, self.rng.choice(["None", "null"]))
        val = apply(lambda v: (v is None) == (op == "is"), node.val)
        return Node(text, val, P_CMP, "cmp")

    def g_affix(self, depth):
        """s.startswith(x) / s.endswith(x), with a single string argument."""
        rng = self.rng
        self.feat.add("strmethod")
        if self.risky and rng.random() < 0.25:
            recv = self.missing_field() or self.g_str(depth)
        else:
            recv = self.g_str(depth)
        if kind(recv.val) not in ("str", "none", "err"):
            raise Reject()
        name = rng.choice(["startswith", "endswith"])
        s = recv.val if type(recv.val) is str else ""
        if rng.random() < 0.6 and s:
            k = rng.randint(0, len(s))
            arg_val = s[:k] if name == "startswith" else s[len(s) - k:]
        else:
            arg_val = self.str_near(s)
        arg = self.str_lit(arg_val) if rng.random() < 0.85 else self.g_str(0)
        if kind(arg.val) not in ("str", "err"):
            raise Reject()
        recv = self.paren(recv, P_ATOM)
        # Python looks the method up before it evaluates the argument.
        method = apply(getattr, recv.val, name)
        val = apply(lambda m, b: m(b), method, arg.val)
        return Node("%s.%s(%s)" % (recv.text, name, arg.text), val, P_ATOM, "call")

    def g_anyall(self):
        self.feat.add("anyall")
        fn = self.rng.choice(["any", "all"])
        r = self.rng.random()
        arg = None
        if r < 0.5:
            arg = self.field(("list",))
        elif r < 0.6 and self.risky:
            arg = self.missing_field()
        if arg is None:
            arg = self.list_lit()
        func = any if fn == "any" else all
        return Node("%s(%s)" % (fn, arg.text), apply(func, arg.val), P_ATOM, "call")

    def g_guard(self, depth):
        """Field guarded against absence, as real policies write it:
        `x is not None and x.startswith(...)`, `"k" in obj and obj.k == v`.
        Only a short-circuiting `and`/`or` keeps these from raising."""
        rng = self.rng
        self.feat.add("guard")
        r = rng.random()
        if r < 0.5:
            node = self.missing_field() if rng.random() < 0.5 else None
            node = node or self.field(("str", "int", "float", "none"))
            if node is None or is_err(node.val):
                raise Reject()
            v = node.val
            if type(v) is str or (v is None and rng.random() < 0.5):
                name = rng.choice(["startswith", "endswith"])
                arg = self.str_lit(self.str_near(v if type(v) is str else ""))
                use = Node("%s.%s(%s)" % (node.text, name, arg.text),
                           apply(lambda a: getattr(a, name)(arg.val), v), P_ATOM, "call")
            else:
                lit = self.num_near(v)
                op = rng.choice(ORDER_OPS)
                use = Node(node.text + self.op_text(op) + self.paren(lit, P_CMP + 1).text,
                           apply(CMP_FUNCS[op], v, lit.val), P_CMP, "cmp")
            if rng.random() < 0.6:
                test = Node(node.text + " is not " + rng.choice(["None", "null"]),
                            v is not None, P_CMP, "cmp")
                return self.boolop("and", [test, use])
            test = Node(node.text + " is " + rng.choice(["None", "null"]), v is None, P_CMP, "cmp")
            return self.boolop("or", [test, use])
        obj = self.field(("obj",))
        if obj is None:
            raise Reject()
        keys = list(dict.keys(obj.val))
        # The session's own fields are fixed: only they may follow `session.`.
        fixed = obj.text == "session"
        key = rng.choice(keys) if keys and (fixed or rng.random() < 0.6) else rng.choice(ABSENT_KEYS)
        test = self.cmp_node("in", self.str_lit(key), obj)
        val = dict.__getitem__(obj.val, key) if key in obj.val else None
        if is_ident(key) and rng.random() < 0.5:
            acc_text = obj.text + "." + key
        else:
            acc_text = obj.text + "[" + self.str_text(key, 0.1) + "]"
        acc = Node(acc_text, val, P_ATOM, "field")
        use = self.cmp_node(rng.choice(EQ_OPS), acc, self.eq_partner(val))
        return self.boolop("and", [test, use])

    def g_truthy(self, depth):
        """A non-bool operand of and/or/not, read by its truthiness."""
        self.feat.add("truthy")
        r = self.rng.random()
        if r < 0.7:
            node = self.any_field(0.3)
        elif r < 0.85:
            node = self.g_len(0)
        else:
            node = self.g_num(min(depth, 1)) if self.rng.random() < 0.5 else self.g_str(0)
        return Node(node.text, node.val, node.prec, "truthy")

    def g_strict_bool(self, depth):
        """An expression whose value is always a bool (or raises): never a
        bare and/or, whose value would be one of its operands."""
        rng = self.rng
        for _ in range(6):
            r = rng.random()
            try:
                if r < 0.2:
                    node = self.field(("bool",))
                    if node is not None:
                        return node
                elif r < 0.45:
                    return self.g_compare(0)
                elif r < 0.6:
                    return self.g_affix(0)
                elif r < 0.75:
                    return self.g_membership(0)
                elif r < 0.85:
                    return self.g_anyall()
                else:
                    return self.g_not(max(depth, 1), 0.3)
            except Reject:
                pass
        return self.bool_lit()

    LEAVES = [
        (32, "compare"), (7, "chain"), (14, "in"), (8, "is"), (10, "affix"),
        (5, "anyall"), (3, "lit"), (6, "boolfield"), (6, "guard"),
    ]

    def g_leaf(self, depth, allow_truthy):
        rng = self.rng
        self.budget -= 1
        if allow_truthy and rng.random() < 0.04:
            return self.g_truthy(depth)
        vd = rng.choice([0, 1, 1, 2, 2])
        for _ in range(8):
            total = sum(w for w, _ in self.LEAVES)
            x = rng.random() * total
            for w, which in self.LEAVES:
                x -= w
                if x < 0:
                    break
            try:
                if which == "compare":
                    return self.g_compare(vd)
                if which == "chain":
                    return self.g_chain(vd)
                if which == "in":
                    return self.g_membership(vd)
                if which == "is":
                    return self.g_is_none()
                if which == "affix":
                    return self.g_affix(vd)
                if which == "anyall":
                    return self.g_anyall()
                if which == "lit":
                    return self.bool_lit()
                if which == "boolfield":
                    node = self.field(("bool",))
                    if node is not None:
                        return node
                if which == "guard":
                    return self.g_guard(vd)
            except Reject:
                pass
        return self.bool_lit()

    # ---- and / or / not

    def boolop(self, op, children):
        p = P_AND if op == "and" else P_OR
        # A child of the same operator needs no parentheses (a and b and c);
        # one of lower precedence does; sometimes add them anyway.
        kids = [self.paren(c, p, 0.15) for c in children]
        val = kids[0].val
        for k in kids:
            val = k.val
            if is_err(val) or (bool(val) if op == "or" else not bool(val)):
                break
        self.feat.add(op)
        depth = 1 + max(c.depth for c in children)
        return Node((" %s " % op).join(k.text for k in kids), val, p, "boolop", depth)

    def g_not(self, depth, p_branch):
        self.feat.add("not")
        child = self.g_bool(depth - 1, True, p_branch)
        # `not a == b` is `not (a == b)` in Python; both spellings are used.
        child = self.paren(child, P_NOT, 0.35)
        val = child.val if is_err(child.val) else (not bool(child.val))
        return Node("not " + child.text, val, P_NOT, "not", child.depth + 1)

    def g_bool(self, depth, allow_truthy, p_branch):
        """A boolean-context expression. The first child of each and/or (the
        'spine') keeps branching with probability p_branch so deep nesting
        is common; the other children mostly end quickly."""
        rng = self.rng
        if depth > 0 and self.budget > 0 and rng.random() < p_branch:
            if rng.random() < 0.2:
                return self.g_not(depth, p_branch)
            op = rng.choice(["and", "or"])
            n = 2 if rng.random() < 0.8 else 3
            spine = rng.randrange(n)
            children = [
                self.g_bool(depth - 1, True, p_branch if i == spine else 0.3)
                for i in range(n)
            ]
            return self.boolop(op, children)
        return self.g_leaf(depth, allow_truthy)


def chain_value(ops, vals):
    """Python's chained comparison: each operand evaluated once, left to
    right, stopping at the first false comparison."""
    left = vals[0]
    if is_err(left):
        return left
    res = True
    for op, right in zip(ops, vals[1:]):
        if is_err(right):
            return right
        res = apply(CMP_FUNCS[op], left, right)
        if is_err(res) or not res:
            return res
        left = right
    return res


def is_ident(key):
    return (
        IDENT.fullmatch(key) is not None
        and not keyword.iskeyword(key)
        and key not in ("true", "false", "null")
        and not key.startswith("__")
    )


def same_outcome(tracked, value, exc):
    if is_err(tracked):
        return exc is not None and type(exc) is type(tracked.exc) and str(exc) == str(tracked.exc)
    return exc is None and type(value) is type(tracked) and value == tracked


# ------------------------------------------------------------- the driver


DEPTH_WEIGHTS = [8, 12, 14, 14, 12, 11, 10, 9, 10]  # for and/or/not depth 0..8
MAX_ERROR_SHARE = 0.12


class Stats:
    def __init__(self):
        self.n = self.errors = self.true = self.false = 0
        self.retries = self.mismatches = self.syntax = 0
        self.feat = {}
        self.max_depth = 0
        self.deep = 0

    def add(self, feats):
        for f in feats:
            self.feat[f] = self.feat.get(f, 0) + 1

    def line(self):
        def pct(k):
            return "%s %.0f%%" % (k, 100.0 * self.feat.get(k, 0) / max(self.n, 1))

        keys = ["and", "or", "not", "chain", "in", "is", "guard", "missing", "out-of-range",
                "truthy", "arith",
                "convert", "len", "strmethod", "anyall", "escape", "non-ascii"]
        return ("gen.py: %d cases, %d python errors, %d true, %d false; " % (
            self.n, self.errors, self.true, self.false)
            + ", ".join(pct(k) for k in keys)
            + "; depth>=4 %.0f%%, max depth %d; %d regenerated, %d tracker mismatches, %d syntax errors"
            % (100.0 * self.deep / max(self.n, 1), self.max_depth, self.retries,
               self.mismatches, self.syntax))


def make_case(rng, stats):
    """One accepted case, or None to ask for another try."""
    data = gen_input(rng)
    try:
        json.dumps(data, allow_nan=False)
    except ValueError:
        return None
    risky = rng.random() < 0.3
    gen = CaseGen(rng, data, risky)
    depth = rng.choices(range(len(DEPTH_WEIGHTS)), DEPTH_WEIGHTS)[0]
    gen.budget = 2 + depth + rng.randint(0, depth + 2)
    node = gen.g_bool(depth, False, 0.85)
    if rng.random() < 0.04:
        node = gen.paren(node, P_ATOM + 1)

    text = node.text
    try:
        value, exc = python_eval(text, gen.names)
    except SyntaxError:
        stats.syntax += 1
        return None
    if not same_outcome(node.val, value, exc):
        stats.mismatches += 1
        return None

    boolean_top = node.tag in ("boolop", "not")
    if "truthy" in gen.feat and not boolean_top:
        return None
    if exc is not None:
        if stats.errors + 1 > MAX_ERROR_SHARE * (stats.n + 1):
            return None
        expected, error = None, "%s: %s" % (type(exc).__name__, exc)
    elif type(value) is bool:
        expected, error = value, None
    elif boolean_top:
        # The language's and/or yield a bool; Python's yield an operand.
        expected, error = bool(value), None
    else:
        return None

    feats = set(gen.feat)
    if "\\" in text:
        feats.add("escape")
    if any(ord(c) > 127 for c in text):
        feats.add("non-ascii")
    if not (feats & {"and", "or"}):
        feats.discard("guard")
    stats.add(feats)
    stats.n += 1
    if error is not None:
        stats.errors += 1
    elif expected:
        stats.true += 1
    else:
        stats.false += 1
    stats.max_depth = max(stats.max_depth, node.depth)
    stats.deep += node.depth >= 4
    return {"condition": text, "input": data, "expected": expected, "python_error": error}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--count", type=int, default=3000)
    args = parser.parse_args()


    rng = random.Random(args.seed)
    stats = Stats()
    lines = []
    while len(lines) < args.count:
        case = make_case(rng, stats)
        if case is None:
            stats.retries += 1
            continue
        case = dict(id=len(lines), **case)
        lines.append(json.dumps(case, allow_nan=False))
    sys.stdout.write("".join(line + "\n" for line in lines))
    sys.stdout.flush()
    print(stats.line(), file=sys.stderr)


if __name__ == "__main__":
    main()
