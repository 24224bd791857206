"""The calculator a fine-tuned model may call: how a call is written, and the safe arithmetic that answers it.

A call is the arithmetic between `<<` and `>>`, followed by its result: `Area = <<18 × 6 ÷ 2>>54 square meters.`
The model writes `<<18 × 6 ÷ 2>>`; the decoder (helpers/inference.py) computes 54, writes it after the call and
lets the model go on. Without the tool the model has to write the result itself.

The arithmetic is read with Python's `ast` and computed with `fractions.Fraction`, never `eval`: numbers
(integers and decimals), + − × ÷ (also - * /), parentheses and unary minus, nothing else. Sizes are bounded: a
call of at most MAX_CHARS characters, numbers of at most MAX_DIGITS digits, results of at most MAX_DIGITS digits
above and below the fraction bar. Anything else is malformed: left as written, and counted.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from fractions import Fraction

OPEN, CLOSE = "<<", ">>"
SUFFIX = "_calc"  # the calculator version of a data file: train_1k.jsonl -> train_1k_calc.jsonl
MAX_CHARS = 80
MAX_DIGITS = 15
CALL = re.compile(r"<<([^<>\n]*)>>")
_SYMBOLS = str.maketrans({"×": "*", "÷": "/", "−": "-", "–": "-", "·": "*", ",": ""})
_OPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
        ast.Div: lambda a, b: a / b}


class CalculatorError(ValueError):
    """A call the calculator refuses: not arithmetic, too big, or a division by zero."""


def _small(x: Fraction) -> Fraction:
    if len(str(abs(x.numerator))) > MAX_DIGITS or len(str(x.denominator)) > MAX_DIGITS:
        raise CalculatorError(f"a number over {MAX_DIGITS} digits")
    return x


def _value(node) -> Fraction:
    if isinstance(node, ast.Constant) and type(node.value) is int:  # decimals were made fractions before
        return _small(Fraction(node.value))
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        left, right = _value(node.left), _value(node.right)
        if isinstance(node.op, ast.Div) and right == 0:
            raise CalculatorError("division by zero")
        return _small(_OPS[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _value(node.operand)
        return -v if isinstance(node.op, ast.USub) else v
    raise CalculatorError(f"not arithmetic: {type(node).__name__}")


_DECIMAL = re.compile(r"(\d+)\.(\d+)")


def evaluate(expression: str) -> Fraction:
    """The exact value of an arithmetic expression, or CalculatorError naming why not."""
    if len(expression) > MAX_CHARS:
        raise CalculatorError(f"longer than {MAX_CHARS} characters")
    text = expression.translate(_SYMBOLS)
    if not re.fullmatch(r"[\d\s.+\-*/()]+", text) or not re.search(r"\d", text):
        raise CalculatorError("only numbers, + - × ÷ and parentheses")
    if "**" in text or "//" in text:
        raise CalculatorError("only + - × ÷")
    if any(len(n) > MAX_DIGITS for n in re.findall(r"\d+", text)):
        raise CalculatorError(f"a number over {MAX_DIGITS} digits")
    # decimals become exact fractions before parsing: 2.5 -> (25/10)
    text = _DECIMAL.sub(lambda m: f"({int(m.group(1) + m.group(2))}/{10 ** len(m.group(2))})", text)
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as e:
        raise CalculatorError("not a complete expression") from e
    return _value(tree.body)


def show(x: Fraction) -> str:
    """A result as the data writes it: 54, 2.5, or 1/3 where no short decimal is exact."""
    if x.denominator == 1:
        return str(x.numerator)
    d = x.denominator
    for p in (2, 5):
        while d % p == 0:
            d //= p
    if d == 1:
        digits = 0
        while (x * 10**digits).denominator != 1:
            digits += 1
        if digits <= 4:
            return f"{float(x):.{digits}f}"
    return f"{x.numerator}/{x.denominator}"


@dataclass
class Call:
    expression: str
    result: str | None  # None: malformed, left as written
    written: str = ""  # what followed the call in the text (the tool's result, or the model's own number)


def result_of(expression: str) -> str | None:
    """The calculator's result as written after a call, or None for a malformed call."""
    try:
        return show(evaluate(expression))
    except CalculatorError:
        return None


def answer(text: str) -> str | None:
    """The result to write after `text` when it ends by closing a call; None when it does not end with a call,
    or the call is malformed (then the text stays as written)."""
    if not text.endswith(CLOSE):
        return None
    start = text.rfind(OPEN, 0, len(text) - len(CLOSE))
    return result_of(text[start + len(OPEN):-len(CLOSE)]) if start >= 0 else None


def calls(text: str) -> list[Call]:
    """Every call in an answer, its result by the calculator, and the number written after it."""
    out = []
    for m in CALL.finditer(text):
        after = re.match(r"-?\d+(?:[./]\d+)?", text[m.end():])
        out.append(Call(m.group(1).strip(), result_of(m.group(1)), after.group(0) if after else ""))
    return out
