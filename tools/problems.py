"""Elementary-school word problems with short, regular worked solutions.

Every family has three parts:
- `draw(rng)` picks numbers (chosen so every answer is a whole number),
- `build(p)` turns them into (question, solution lines, answer),
- `check(p)` recomputes the answer by a different route; the tests compare the two.

A 135 M-parameter model can only imitate what it sees, so each solution line holds one formula
(`Area = 18 × 6 ÷ 2 = 54 square meters.`) and the answer ends as `{{ans:N}}`.

    python tools/problems.py --out resources/2_7   # write every split (byte-identical each time)
    python tools/problems.py --card                # print the data card's count table
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import random
import re
import statistics
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the course folder, for helpers

from helpers import calculator  # noqa: E402 - the call syntax the decoder answers
from helpers.data import to_row  # noqa: E402 - the prompt format lives with the data reader
from helpers.paths import DATA_DIR  # noqa: E402

SEED = 2_7
# the training splits also come in a calculator version, <split>_calc.jsonl: the same rows, with each calculation
# written as a call the decoder answers (helpers/calculator.py); the exams stay as they are
CALCULATOR, CALCULATOR_SPLITS = calculator.SUFFIX, ("train_100", "train_1k", "val")
SPLIT_SIZES = {"exam_100": 100, "val": 100, "train_1k": 1000}  # train_100 = first 100 rows of train_1k

NAMES = ["Lily", "Tom", "Mia", "Ben", "Xiaoli", "Mingming", "Anna", "Leo", "Dongdong", "Sara", "Hong", "Max"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]
DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]  # February not used across a month end


@dataclass
class Problem:
    family: str
    question: str
    steps: list[str]
    answer: int
    params: dict = field(default_factory=dict)

    def solution(self) -> str:
        return "\n".join(self.steps) + f"\n\n{{{{ans:{self.answer}}}}}"

    def row(self) -> dict:
        return to_row(self.question, self.solution())

    def calculator_row(self) -> dict:
        """The same exercise with each calculation written as a calculator call and its result."""
        steps = "\n".join(with_calculator(s) for s in self.steps)
        return to_row(self.question, steps + f"\n\n{{{{ans:{self.answer}}}}}")


@dataclass(frozen=True)
class Family:
    name: str
    draw: Callable[[random.Random], dict]
    build: Callable[[dict], tuple[str, list[str], int]]
    check: Callable[[dict], int]

    def make(self, rng: random.Random) -> Problem:
        return self.problem(self.draw(rng))

    def problem(self, p: dict, question: str | None = None) -> Problem:
        q, steps, ans = self.build(p)
        return Problem(self.name, question or q, [one_step_at_a_time(s) for s in steps], ans, p)


# ---------------------------------------------------------------- one operation per "="

_OPS = {"×": lambda a, b: a * b, "÷": lambda a, b: a // b, "+": lambda a, b: a + b, "-": lambda a, b: a - b}
_EXPR = re.compile(r"^[\d ×÷+\-()]+$")


def _tokens(expr: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.findall(r"\d+|[×÷+\-()]", expr)]


def _text(tokens: list) -> str:
    return " ".join(map(str, tokens)).replace("( ", "(").replace(" )", ")")


def _reduce_once(tokens: list) -> list:
    """Carry out the next operation: innermost brackets first, × and ÷ before + and -, left to right."""
    if "(" in tokens:
        close = tokens.index(")")
        open_ = max(i for i in range(close) if tokens[i] == "(")
        inner = _reduce_once(tokens[open_ + 1:close])
        if len(inner) == 1:  # a bracket worked out to one number loses its brackets
            return tokens[:open_] + inner + tokens[close + 1:]
        return tokens[:open_ + 1] + inner + tokens[close:]
    for ops in (("×", "÷"), ("+", "-")):
        i = next((k for k, t in enumerate(tokens) if t in ops), None)
        if i is not None:
            return tokens[:i - 1] + [_OPS[tokens[i]](tokens[i - 1], tokens[i + 1])] + tokens[i + 2:]
    return tokens


def worked(expr: str) -> list[str]:
    """Every stage of working `expr` out, one operation at a time: "18 × 6 ÷ 2" -> ["18 × 6 ÷ 2", "108 ÷ 2", "54"]."""
    stages = [_tokens(expr)]
    while len(stages[-1]) > 1:
        stages.append(_reduce_once(stages[-1]))
    return [_text(t) for t in stages]


def one_step_at_a_time(line: str) -> str:
    """Write out the intermediate results of a solution line, so the model does one operation per `=`:
    "Area = 18 × 6 ÷ 2 = 54 square meters." -> "Area = 18 × 6 ÷ 2 = 108 ÷ 2 = 54 square meters."."""
    parts = line.split(" = ")
    if len(parts) < 2:
        return line
    head, _, expr = parts[-2].rpartition(": ")
    result = re.match(r"(\d+)(?=[ .]|$)", parts[-1])
    if not result or " remainder" in parts[-1] or not _EXPR.match(expr):
        return line
    stages = worked(expr)
    if stages[-1] != result.group(1):
        raise ValueError(f"worked({expr!r}) gives {stages[-1]}, the solution line says {parts[-1]!r}")
    return " = ".join(parts[:-2] + [(f"{head}: " if head else "") + stages[0]] + stages[1:-1] + [parts[-1]])


def with_calculator(line: str) -> str:
    """A worked line with its calculation handed to the calculator: the expression as a call, then its result,
    the intermediate stages gone: "Area = 18 × 6 ÷ 2 = 108 ÷ 2 = 54 square meters." ->
    "Area = <<18 × 6 ÷ 2>>54 square meters.". Lines without + - × ÷ (LCM, GCD, a clock time) and division with
    a remainder stay as they are: the calculator does neither."""
    parts = line.split(" = ")
    result = re.match(r"(\d+)(?=[ .]|$)", parts[-1])
    if len(parts) < 2 or not result or " remainder" in parts[-1]:
        return line
    for i, part in enumerate(parts[:-1]):
        head, _, expr = part.rpartition(": ")
        if _EXPR.match(expr) and re.search(r"[×÷+\-]", expr):
            value = calculator.evaluate(expr)
            if value != int(result.group(1)):
                raise ValueError(f"the calculator gives {value} for {expr!r}, the line says {parts[-1]!r}")
            call = (f"{head}: " if head else "") + f"{calculator.OPEN}{expr}{calculator.CLOSE}{parts[-1]}"
            return " = ".join(parts[:i] + [call])
    return line


FAMILIES: dict[str, Family] = {}


def family(name: str, draw, check):
    def register(build):
        FAMILIES[name] = Family(name, draw, build, check)
        return build
    return register


def _name(r: random.Random) -> str:
    return r.choice(NAMES)


# ---------------------------------------------------------------- fractions, ratios, percent

@family("book_fractions", lambda r: _book_draw(r),
        lambda p: int(p["total"] * (Fraction(1, p["a"]) + Fraction(1, p["b"]))))
def _book(p):
    t, a, b = p["total"], p["a"], p["b"]
    q = f"{p['name']} reads 1/{a} of a {t}-page book on day one and 1/{b} of it on day two. How many pages in all?"
    d1, d2 = t // a, t // b
    return q, [f"Day 1 = {t} ÷ {a} = {d1} pages.", f"Day 2 = {t} ÷ {b} = {d2} pages.",
               f"Total = {d1} + {d2} = {d1 + d2} pages."], d1 + d2


def _book_draw(r):
    a, b = sorted(r.sample([2, 3, 4, 5, 6, 8, 10], 2))
    return {"total": math.lcm(a, b) * r.randint(2, 12), "a": a, "b": b, "name": _name(r)}


@family("fraction_rest", lambda r: {"whole": (d := r.choice([3, 4, 5, 6, 8])) * r.randint(3, 12), "den": d,
                                    "num": r.randint(1, d - 1)},
        lambda p: p["whole"] - int(Fraction(p["num"], p["den"]) * p["whole"]))
def _fraction_rest(p):
    w, n, d = p["whole"], p["num"], p["den"]
    boys = w // d * n
    q = f"A class has {w} students and {n}/{d} of them are boys. How many girls are in the class?"
    return q, [f"Boys = {w} ÷ {d} × {n} = {boys}.", f"Girls = {w} - {boys} = {w - boys}."], w - boys


@family("ratio_part", lambda r: {"a": (ab := r.sample(range(2, 10), 2))[0], "b": ab[1], "k": r.randint(2, 12)},
        lambda p: int(Fraction(p["a"] * p["k"] * p["b"], p["a"])))
def _ratio_part(p):
    a, b, k = p["a"], p["b"], p["k"]
    q = f"The ratio of chickens to ducks on a farm is {a}:{b}. There are {a * k} chickens. How many ducks are there?"
    return q, [f"One part = {a * k} ÷ {a} = {k}.", f"Ducks = {k} × {b} = {k * b}."], k * b


@family("ratio_share", lambda r: {"a": (ab := sorted(r.sample(range(1, 10), 2)))[0], "b": ab[1],
                                  "k": r.randint(2, 15)},
        lambda p: int(Fraction((p["a"] + p["b"]) * p["k"] * max(p["a"], p["b"]), p["a"] + p["b"])))
def _ratio_share(p):
    a, b, k = p["a"], p["b"], p["k"]
    total = (a + b) * k
    q = f"Two friends share {total} stickers in the ratio {a}:{b}. How many stickers does the larger share hold?"
    return q, [f"One part = {total} ÷ ({a} + {b}) = {k}.", f"Larger share = {k} × {b} = {k * b}."], k * b


@family("percent_of", lambda r: {"pct": r.choice([10, 20, 25, 30, 40, 50, 60, 75, 80]), "n": 20 * r.randint(1, 25)},
        lambda p: int(Fraction(p["pct"], 100) * p["n"]))
def _percent_of(p):
    pct, n = p["pct"], p["n"]
    ans = n * pct // 100
    q = f"A school has {n} students and {pct}% of them walk to school. How many students walk to school?"
    return q, [f"Walkers = {n} × {pct} ÷ 100 = {ans}."], ans


@family("discount", lambda r: {"price": 20 * r.randint(2, 30), "off": r.choice([10, 15, 20, 25, 30, 40, 50])},
        lambda p: int(p["price"] * Fraction(100 - p["off"], 100)))
def _discount(p):
    price, off = p["price"], p["off"]
    cut = price * off // 100
    q = f"A jacket costs {price} yuan. The shop takes {off}% off the price. How many yuan does it cost now?"
    return q, [f"Discount = {price} × {off} ÷ 100 = {cut} yuan.", f"Price = {price} - {cut} = {price - cut} yuan."], \
        price - cut


# ---------------------------------------------------------------- geometry

@family("rect_perimeter", lambda r: {"w": r.randint(20, 120), "d": r.randint(10, 100), "unit": "cm"},
        lambda p: 2 * (p["w"] + p["d"]) + 2 * p["w"])
def _rect_perimeter(p):
    w, d = p["w"], p["d"]
    length = w + d
    q = (f"A rectangular table is {length} {p['unit']} long, and its width is {d} {p['unit']} shorter than its "
         f"length. What is its perimeter in {p['unit']}?")
    return q, [f"Width = {length} - {d} = {w} {p['unit']}.",
               f"Perimeter = ({length} + {w}) × 2 = {2 * (length + w)} {p['unit']}."], 2 * (length + w)


@family("rect_area", lambda r: {"l": r.randint(5, 40), "w": r.randint(3, 25)},
        lambda p: sum(p["w"] for _ in range(p["l"])))
def _rect_area(p):
    length, w = p["l"], p["w"]
    q = f"A rectangular garden is {length} meters long and {w} meters wide. What is its area in square meters?"
    return q, [f"Area = {length} × {w} = {length * w} square meters."], length * w


@family("square_perimeter", lambda r: {"s": r.randint(4, 99)}, lambda p: p["s"] + p["s"] + p["s"] + p["s"])
def _square_perimeter(p):
    s = p["s"]
    q = f"A square pond has sides of {s} meters. How many meters of fence go all the way around it?"
    return q, [f"Perimeter = {s} × 4 = {4 * s} meters."], 4 * s


@family("triangle_area", lambda r: {"b": 2 * r.randint(2, 20), "h": r.randint(3, 25)},
        lambda p: int(Fraction(p["b"], 2) * p["h"]))
def _triangle_area(p):
    b, h = p["b"], p["h"]
    q = f"A triangle has a base of {b} cm and a height of {h} cm. What is its area in square centimeters?"
    return q, [f"Area = {b} × {h} ÷ 2 = {b * h // 2} square centimeters."], b * h // 2


@family("triangle_yield", lambda r: {"b": 2 * r.randint(3, 15), "h": r.randint(3, 15), "k": r.randint(2, 15)},
        lambda p: int(Fraction(p["b"] * p["h"], 2) * p["k"]))
def _triangle_yield(p):
    b, h, k = p["b"], p["h"], p["k"]
    area = b * h // 2
    q = (f"A triangular field has a base of {b} meters and a height of {h} meters. Each square meter yields "
         f"{k} kg of radishes. How many kilograms of radishes does the field yield?")
    return q, [f"Area = {b} × {h} ÷ 2 = {area} square meters.", f"Weight = {area} × {k} = {area * k} kg."], area * k


@family("cuboid_volume", lambda r: {"l": r.randint(2, 20), "w": r.randint(2, 12), "h": r.randint(2, 10)},
        lambda p: math.prod([p["l"], p["w"], p["h"]]))
def _cuboid(p):
    length, w, h = p["l"], p["w"], p["h"]
    q = f"A box is {length} cm long, {w} cm wide and {h} cm high. What is its volume in cubic centimeters?"
    return q, [f"Volume = {length} × {w} × {h} = {length * w * h} cubic centimeters."], length * w * h


# ---------------------------------------------------------------- multiples and divisors

@family("lcm_groups", lambda r: {"ns": sorted(r.sample(range(2, 11), 3))}, lambda p: math.lcm(*p["ns"]))
def _lcm_groups(p):
    a, b, c = p["ns"]
    ab = math.lcm(a, b)
    q = (f"A teacher has some balls. Put into groups of {a}, of {b} or of {c}, there are none left over each "
         f"time. What is the smallest possible number of balls?")
    return q, [f"LCM({a}, {b}) = {ab}.", f"LCM({ab}, {c}) = {math.lcm(ab, c)}."], math.lcm(ab, c)


@family("lcm_buses", lambda r: {"ab": sorted(r.sample([4, 5, 6, 8, 9, 10, 12, 15, 18, 20, 24, 25, 30], 2))},
        lambda p: next(t for t in range(1, 10_000) if t % p["ab"][0] == 0 and t % p["ab"][1] == 0))
def _lcm_buses(p):
    a, b = p["ab"]
    q = (f"Bus A leaves every {a} minutes and bus B every {b} minutes. They just left together. After how many "
         f"minutes will they next leave together?")
    return q, [f"LCM({a}, {b}) = {math.lcm(a, b)} minutes."], math.lcm(a, b)


@family("gcd_ribbons", lambda r: {"g": (g := r.randint(2, 15)), "ab": [g * m for m in sorted(r.sample(range(2, 9), 2))]},
        lambda p: max(d for d in range(1, p["ab"][0] + 1) if p["ab"][0] % d == 0 and p["ab"][1] % d == 0))
def _gcd_ribbons(p):
    a, b = p["ab"]
    g = math.gcd(a, b)
    q = (f"Two ribbons are {a} cm and {b} cm long. They are cut into equal pieces, as long as possible, with "
         f"nothing left over. How long is each piece in cm?")
    return q, [f"GCD({a}, {b}) = {g} cm."], g


@family("remainder_share", lambda r: {"k": (k := r.randint(3, 9)), "n": k * r.randint(3, 12) + r.randint(1, k - 1)},
        lambda p: p["n"] - p["k"] * (p["n"] // p["k"]))
def _remainder_share(p):
    n, k = p["n"], p["k"]
    q = f"{n} candies are shared equally among {k} children, each getting as many as possible. How many are left over?"
    return q, [f"{n} ÷ {k} = {n // k} remainder {n % k}."], n % k


@family("boats_needed", lambda r: {"k": (k := r.randint(3, 9)), "n": k * r.randint(3, 12) + r.randint(1, k - 1)},
        lambda p: -(-p["n"] // p["k"]))
def _boats(p):
    n, k = p["n"], p["k"]
    q = f"{n} students go rowing and each boat holds {k} students. How many boats do they need at least?"
    return q, [f"{n} ÷ {k} = {n // k} remainder {n % k}.", f"Boats = {n // k} + 1 = {n // k + 1}."], n // k + 1


# ---------------------------------------------------------------- ages

@family("age_times", lambda r: _age_times_draw(r),
        lambda p: int(Fraction(p["old"] + p["k"], p["young"] + p["k"])))
def _age_times(p):
    old, young, k = p["old"], p["young"], p["k"]
    when = "next year" if k == 1 else f"in {k} years"
    q = (f"Grandpa is {old} years old this year and Dongdong is {young}. {when.capitalize()}, how many times "
         f"Dongdong's age will Grandpa's age be?")
    o, y = old + k, young + k
    return q, [f"Grandpa = {old} + {k} = {o}.", f"Dongdong = {young} + {k} = {y}.",
               f"Times = {o} ÷ {y} = {o // y}."], o // y


def _age_times_draw(r):
    while True:
        young, k, m = r.randint(4, 14), r.randint(1, 5), r.randint(3, 8)
        old = (young + k) * m - k
        if 40 <= old <= 90:
            return {"old": old, "young": young, "k": k}


@family("age_sum", lambda r: {"son": r.randint(3, 20), "m": r.randint(2, 6)}, lambda p: p["son"] * (p["m"] + 1))
def _age_sum(p):
    son, m = p["son"], p["m"]
    q = f"A son is {son} years old and his father is {m} times as old. What is the sum of their ages?"
    return q, [f"Father = {son} × {m} = {son * m}.", f"Sum = {son * m} + {son} = {son * m + son}."], son * m + son


# ---------------------------------------------------------------- money

@family("money_left", lambda r: _money_left_draw(r), lambda p: p["have"] - sum([p["price"]] * p["n"]))
def _money_left(p):
    have, n, price = p["have"], p["n"], p["price"]
    cost = n * price
    q = (f"{p['name']} has {have} yuan and buys {n} tubes of shuttlecocks at {price} yuan each. "
         f"How many yuan are left?")
    return q, [f"Cost = {n} × {price} = {cost} yuan.", f"Left = {have} - {cost} = {have - cost} yuan."], have - cost


def _money_left_draw(r):
    n, price = r.randint(2, 20), r.randint(3, 40)
    return {"have": 50 * (n * price // 50 + r.randint(1, 4)), "n": n, "price": price, "name": _name(r)}


@family("two_purchases", lambda r: {"a": r.randint(2, 12), "pa": r.randint(10, 60), "b": r.randint(2, 12),
                                    "pb": r.randint(5, 40)},
        lambda p: sum([p["pa"]] * p["a"] + [p["pb"]] * p["b"]))
def _two_purchases(p):
    a, pa, b, pb = p["a"], p["pa"], p["b"], p["pb"]
    q = f"A football costs {pa} yuan and a volleyball {pb} yuan. A school buys {a} footballs and {b} volleyballs. Total yuan?"
    return q, [f"Footballs = {a} × {pa} = {a * pa} yuan.", f"Volleyballs = {b} × {pb} = {b * pb} yuan.",
               f"Total = {a * pa} + {b * pb} = {a * pa + b * pb} yuan."], a * pa + b * pb


@family("unit_price", lambda r: {"n": (ns := r.sample(range(2, 13), 2))[0], "m": ns[1], "one": r.randint(2, 30)},
        lambda p: int(Fraction(p["n"] * p["one"], p["n"]) * p["m"]))
def _unit_price(p):
    n, m, one = p["n"], p["m"], p["one"]
    q = f"{n} notebooks cost {n * one} yuan. How many yuan do {m} of the same notebooks cost?"
    return q, [f"One notebook = {n * one} ÷ {n} = {one} yuan.", f"Cost = {m} × {one} = {m * one} yuan."], m * one


@family("shopping_change", lambda r: _shopping_draw(r),
        lambda p: p["paid"] - sum([p["pa"]] * p["a"]) - sum([p["pb"]] * p["b"]))
def _shopping(p):
    a, pa, b, pb, paid = p["a"], p["pa"], p["b"], p["pb"], p["paid"]
    x, y = a * pa, b * pb
    q = f"Mom buys {a} kg of apples at {pa} yuan/kg and {b} kg of pears at {pb} yuan/kg, paying {paid} yuan. Change?"
    return q, [f"Apples = {a} × {pa} = {x}.", f"Pears = {b} × {pb} = {y}.", f"Total = {x} + {y} = {x + y}.",
               f"Change = {paid} - {x + y} = {paid - x - y} yuan."], paid - x - y


def _shopping_draw(r):
    a, pa, b, pb = r.randint(2, 6), r.randint(3, 12), r.randint(2, 6), r.randint(3, 12)
    return {"a": a, "pa": pa, "b": b, "pb": pb, "paid": 50 * ((a * pa + b * pb) // 50 + 1)}


# ---------------------------------------------------------------- time, distance, units

@family("calendar_days", lambda r: _calendar_draw(r),
        lambda p: (dt.date(2023, p["m"] + 1, p["d2"]) - dt.date(2023, p["m"], p["d1"])).days + 1)
def _calendar(p):
    m, d1, d2 = p["m"], p["d1"], p["d2"]
    first, second = MONTHS[m - 1], MONTHS[m]
    rest = DAYS_IN_MONTH[m - 1] - d1 + 1
    q = (f"A road repair started on {first} {d1} and finished on {second} {d2}, counting both days. "
         f"How many days did the work take?")
    return q, [f"{first}: {DAYS_IN_MONTH[m - 1]} - {d1} + 1 = {rest} days.", f"{second}: {d2} days.",
               f"Total = {rest} + {d2} = {rest + d2} days."], rest + d2


def _calendar_draw(r):
    return {"m": r.choice([3, 4, 5, 6, 7, 8, 9, 10, 11]), "d1": r.randint(2, 28), "d2": r.randint(1, 28)}


@family("minutes_between", lambda r: _minutes_draw(r),
        lambda p: int((dt.datetime(2023, 1, 1, p["h2"], p["m2"]) - dt.datetime(2023, 1, 1, p["h1"], p["m1"]))
                      .total_seconds() // 60))
def _minutes_between(p):
    h1, m1, h2, m2 = p["h1"], p["m1"], p["h2"], p["m2"]
    total = (h2 * 60 + m2) - (h1 * 60 + m1)
    hours, mins = divmod(total, 60)
    q = f"A train leaves at {h1}:{m1:02d} and arrives at {h2}:{m2:02d} the same day. How many minutes is the trip?"
    return q, [f"{h1}:{m1:02d} to {h2}:{m2:02d} = {hours} hours {mins} minutes.",
               f"Minutes = {hours} × 60 + {mins} = {total}."], total


def _minutes_draw(r):
    h1, m1 = r.randint(6, 14), 5 * r.randint(0, 11)
    start = h1 * 60 + m1
    end = start + 5 * r.randint(12, 90)
    return {"h1": h1, "m1": m1, "h2": end // 60, "m2": end % 60}


@family("track_left", lambda r: _track_draw(r),
        lambda p: p["km"] * 1000 - p["laps"] * p["lap"])
def _track_left(p):
    lap, km, laps = p["lap"], p["km"], p["laps"]
    done = lap * laps
    run = "one lap" if laps == 1 else f"{laps} laps"
    q = (f"A track is {lap} meters per lap. Mingming wants to run {km} km and has run {run}. How many more "
         f"meters must he run?")
    return q, [f"{km} km = {km * 1000} meters.", f"Run = {laps} × {lap} = {done} meters.",
               f"Left = {km * 1000} - {done} = {km * 1000 - done} meters."], km * 1000 - done


def _track_draw(r):
    lap, km = r.choice([200, 250, 300, 400, 500]), r.randint(1, 6)
    return {"lap": lap, "km": km, "laps": r.randint(1, min(4, (km * 1000 - 1) // lap))}


UNITS = {"m-cm": ("m", "cm", 100, "A rope is {} m {} cm long."), "kg-g": ("kg", "g", 1000, "A bag of rice weighs {} kg {} g."),
         "h-min": ("h", "minutes", 60, "A film lasts {} h {} min.")}


@family("unit_convert", lambda r: {"kind": (k := r.choice(sorted(UNITS))), "big": r.randint(1, 9),
                                   "small": r.randint(1, UNITS[k][2] - 1)},
        lambda p: int(dt.timedelta(hours=p["big"], minutes=p["small"]).total_seconds() // 60) if p["kind"] == "h-min"
        else p["big"] * {"m-cm": 100, "kg-g": 1000}[p["kind"]] + p["small"])
def _unit_convert(p):
    big_u, small_u, f, sentence = UNITS[p["kind"]]
    big, small = p["big"], p["small"]
    q = sentence.format(big, small) + f" How many {small_u} is that?"
    return q, [f"{big} {big_u} = {big} × {f} = {big * f} {small_u}.",
               f"Total = {big * f} + {small} = {big * f + small} {small_u}."], big * f + small


@family("distance", lambda r: {"v": r.randint(3, 90), "t": r.randint(2, 9)},
        lambda p: sum([p["v"]] * p["t"]))
def _distance(p):
    v, t = p["v"], p["t"]
    q = f"A car travels at {v} km per hour for {t} hours. How many km does it travel?"
    return q, [f"Distance = {v} × {t} = {v * t} km."], v * t


@family("travel_time", lambda r: {"v": r.randint(3, 90), "t": r.randint(2, 12)},
        lambda p: next(t for t in range(1, 100) if p["v"] * t == p["v"] * p["t"]))
def _travel_time(p):
    v, t = p["v"], p["t"]
    q = f"A cyclist rides {v * t} km at {v} km per hour. How many hours does the ride take?"
    return q, [f"Time = {v * t} ÷ {v} = {t} hours."], t


@family("work_rate", lambda r: {"a": r.randint(3, 20), "b": r.randint(3, 20), "t": r.randint(2, 9)},
        lambda p: int(Fraction(p["t"] * (p["a"] + p["b"]), p["a"] + p["b"])))
def _work_rate(p):
    a, b, t = p["a"], p["b"], p["t"]
    total = (a + b) * t
    q = (f"Worker A makes {a} parts per hour and worker B makes {b} parts per hour. Working together, how many "
         f"hours do they need to make {total} parts?")
    return q, [f"Together = {a} + {b} = {a + b} parts per hour.", f"Time = {total} ÷ {a + b} = {t} hours."], t


@family("average", lambda r: _average_draw(r), lambda p: int(statistics.mean(p["xs"])))
def _average(p):
    xs = p["xs"]
    s = sum(xs)
    q = f"{p['name']} scored {', '.join(map(str, xs[:-1]))} and {xs[-1]} on {len(xs)} tests. What is the average score?"
    return q, [f"Sum = {' + '.join(map(str, xs))} = {s}.", f"Average = {s} ÷ {len(xs)} = {s // len(xs)}."], \
        s // len(xs)


def _average_draw(r):
    n = r.choice([3, 4, 5])
    xs = [r.randint(60, 100) for _ in range(n - 1)]
    need = -sum(xs) % n  # make the sum divisible by n with a last score still in 60..100
    last = 60 + need + n * r.randint(0, (100 - 60 - need) // n)
    return {"xs": xs + [last], "name": _name(r)}


# ---------------------------------------------------------------- other wordings (training rows only)

def _when(k: int) -> str:
    return "next year" if k == 1 else f"in {k} years"


def _laps(n: int) -> str:
    return "one lap" if n == 1 else f"{n} laps"


# A learner's exam is worded by somebody else, so a small model must not tie a solution to one sentence.
# Training rows of these families take one of these wordings at random (same numbers, same solution);
# the held-out splits keep each family's first wording, so the exams are as they were.
REWORDINGS: dict[str, list[Callable[[dict], str]]] = {
    "book_fractions": [
        lambda p: (f"A book has {p['total']} pages. On Monday {p['name']} reads 1/{p['a']} of it and on Tuesday "
                   f"1/{p['b']} of it. How many pages has {p['name']} read in the two days?"),
        lambda p: (f"{p['name']} borrows a {p['total']}-page novel, gets through 1/{p['a']} of the pages the first "
                   f"evening and 1/{p['b']} of them the next evening. How many pages is that altogether?"),
    ],
    "rect_perimeter": [
        lambda p: (f"A rectangle is {p['w'] + p['d']} {p['unit']} long. Its width is {p['d']} {p['unit']} less "
                   f"than the length. Find the perimeter in {p['unit']}."),
        lambda p: (f"The length of a rectangular board is {p['w'] + p['d']} {p['unit']} and it is {p['d']} "
                   f"{p['unit']} narrower than it is long. How many {p['unit']} is it all the way around?"),
    ],
    "lcm_groups": [
        lambda p: (f"Some pencils can be packed {p['ns'][0]} to a box, {p['ns'][1]} to a box or {p['ns'][2]} to a "
                   f"box, and none are left over. What is the fewest pencils there can be?"),
        lambda p: (f"Counting a pile of stamps by {p['ns'][0]}s, by {p['ns'][1]}s or by {p['ns'][2]}s leaves "
                   f"nothing over. At least how many stamps are in the pile?"),
    ],
    "lcm_buses": [
        lambda p: (f"Route 1 buses depart every {p['ab'][0]} minutes and route 2 buses every {p['ab'][1]} minutes. "
                   f"Both have just departed at the same moment. How many minutes until they next depart together?"),
        lambda p: (f"One bell rings every {p['ab'][0]} minutes and another every {p['ab'][1]} minutes. They just "
                   f"rang at the same time. After at least how many minutes do they ring together again?"),
    ],
    "age_times": [
        lambda p: (f"Dongdong is {p['young']} years old and Grandpa is {p['old']} this year. {_when(p['k']).capitalize()}, "
                   f"how many times as old as Dongdong will Grandpa be?"),
        lambda p: (f"This year Grandpa's age is {p['old']} and Dongdong's is {p['young']}. What will Grandpa's age "
                   f"divided by Dongdong's age be {_when(p['k'])}?"),
    ],
    "money_left": [
        lambda p: (f"{p['name']} goes shopping with {p['have']} yuan and buys {p['n']} tubes of shuttlecocks, each "
                   f"costing {p['price']} yuan. How much money is left, in yuan?"),
        lambda p: (f"A tube of shuttlecocks costs {p['price']} yuan. {p['name']} pays for {p['n']} tubes out of "
                   f"{p['have']} yuan. How many yuan remain?"),
    ],
    "ratio_part": [
        lambda p: (f"A farm has {p['a'] * p['k']} chickens. The number of chickens to the number of ducks is "
                   f"{p['a']}:{p['b']}. How many ducks does the farm have?"),
        lambda p: (f"Chickens and ducks live in a yard, chickens to ducks {p['a']} to {p['b']}. If {p['a'] * p['k']} "
                   f"of them are chickens, how many are ducks?"),
    ],
    "calendar_days": [
        lambda p: (f"A school fair ran from {MONTHS[p['m'] - 1]} {p['d1']} to {MONTHS[p['m']]} {p['d2']}, both days "
                   f"included. How many days did it run?"),
        lambda p: (f"Workers paved a road from {MONTHS[p['m'] - 1]} {p['d1']} until {MONTHS[p['m']]} {p['d2']}. "
                   f"Counting the first and the last day, how many days did they work?"),
    ],
    "two_purchases": [
        lambda p: (f"A school buys {p['a']} footballs at {p['pa']} yuan each and {p['b']} volleyballs at {p['pb']} "
                   f"yuan each. How many yuan does it pay altogether?"),
        lambda p: (f"Footballs cost {p['pa']} yuan each and volleyballs {p['pb']} yuan each. What do {p['a']} "
                   f"footballs and {p['b']} volleyballs cost in total, in yuan?"),
    ],
    "track_left": [
        lambda p: (f"Mingming plans to run {p['km']} km on a track of {p['lap']} meters per lap. So far he has done "
                   f"{_laps(p['laps'])}. How many meters are still to go?"),
        lambda p: (f"The school track measures {p['lap']} meters around. Mingming's goal is {p['km']} km and he "
                   f"has completed {_laps(p['laps'])}. How many more meters does he need?"),
    ],
}


def reword(problem: Problem, rng: random.Random) -> Problem:
    """The same exercise in one of its family's wordings (the first wording included), chosen by `rng`."""
    wordings = REWORDINGS.get(problem.family, [])
    pick = rng.randrange(len(wordings) + 1)
    if pick == 0:
        return problem
    return Problem(problem.family, wordings[pick - 1](problem.params), problem.steps, problem.answer, problem.params)


# ---------------------------------------------------------------- the lesson's exam and demo

TEST_ITEMS = [
    ("book_fractions", {"total": 240, "a": 8, "b": 5, "name": "Xiaoli"},
     "Xiaoli is reading a storybook of 240 pages. She reads 1/8 of the book on the first day and 1/5 of the "
     "book on the second day. How many pages has she read after the two days?"),
    ("rect_perimeter", {"w": 50, "d": 100, "unit": "cm"},
     "A rectangular dining table is 150 cm long. Its width is 100 cm less than its length. "
     "What is the perimeter of the table in centimeters?"),
    ("lcm_groups", {"ns": [3, 4, 5]},
     "The PE room bought some small balls. Whether they are grouped in threes, fours or fives, no ball is left "
     "over. What is the smallest number of balls there can be?"),
    ("age_times", {"old": 62, "young": 8, "k": 1},
     "This year Grandpa is 62 and Dongdong is 8. Next year, Grandpa's age will be how many times Dongdong's age?"),
    ("money_left", {"have": 400, "n": 15, "price": 25, "name": "Ms. Wang"},
     "Ms. Wang takes 400 yuan to the shop and buys 15 tubes of badminton shuttlecocks at 25 yuan per tube. "
     "How many yuan does she have left?"),
    ("ratio_part", {"a": 5, "b": 3, "k": 5},
     "On a farm, chickens and ducks are in the ratio 5:3. There are 25 chickens. How many ducks are there?"),
    ("lcm_buses", {"ab": [10, 15]},
     "The No. 4 bus leaves the station every 10 minutes and the No. 6 bus every 15 minutes. They have just left "
     "at the same time. What is the least number of minutes until they leave together again?"),
    ("calendar_days", {"m": 5, "d1": 9, "d2": 10},
     "Work on a road began on May 9 and ended on June 10. How many days did the work last?"),
    ("two_purchases", {"a": 8, "pa": 32, "b": 6, "pb": 18},
     "Each football costs 32 yuan and each volleyball costs 18 yuan. The school buys 8 footballs and "
     "6 volleyballs. How many yuan does it spend in all?"),
    ("track_left", {"lap": 400, "km": 1, "laps": 1},
     "One lap of the sports track is 400 meters. Mingming wants to run 1 kilometer and has finished one lap. "
     "How many more meters does he have to run?"),
]
DEMO_ITEM = ("triangle_yield", {"b": 18, "h": 6, "k": 12},
             "A triangular field has a base of 18 meters and a height of 6 meters. Every square meter gives 12 kg "
             "of radishes. How many kilograms of radishes does the whole field give?")


def lesson_test_problems() -> list[Problem]:
    return [FAMILIES[f].problem(p, q) for f, p, q in TEST_ITEMS]


def demo_problem() -> Problem:
    f, p, q = DEMO_ITEM
    return FAMILIES[f].problem(p, q)


# ---------------------------------------------------------------- splits

def _key(problem: Problem) -> str:
    """Identity of a problem's numbers: two questions with the same key are the same exercise."""
    nums = {k: v for k, v in problem.params.items() if k != "name"}
    return problem.family + json.dumps(nums, sort_keys=True)


def generate_splits(seed: int = SEED) -> dict[str, list[Problem]]:
    """Every split, disjoint by question text and by numbers; held-out splits first so they stay balanced."""
    rng = random.Random(seed)
    reserved = {_key(p) for p in lesson_test_problems() + [demo_problem()]}
    seen_text = {p.question for p in lesson_test_problems() + [demo_problem()]}
    names = sorted(FAMILIES)
    splits: dict[str, list[Problem]] = {}
    for split, size in SPLIT_SIZES.items():
        out: list[Problem] = []
        while len(out) < size:
            for name in names:  # round-robin keeps every split balanced across families
                if len(out) == size:
                    break
                for _ in range(1000):
                    prob = FAMILIES[name].make(rng)
                    if _key(prob) not in reserved and prob.question not in seen_text:
                        break
                else:
                    raise RuntimeError(f"family {name} ran out of distinct problems")
                reserved.add(_key(prob))
                seen_text.add(prob.question)
                out.append(prob)
        rng.shuffle(out)
        splits[split] = out
    # wordings come from a generator of their own, so every split keeps its numbers
    wording_rng = random.Random(seed + 1)
    splits["train_1k"] = [reword(p, wording_rng) for p in splits["train_1k"]]
    splits["train_100"] = splits["train_1k"][:100]
    splits["test"] = lesson_test_problems()
    splits["demo"] = [demo_problem()]
    return splits


def write_splits(out_dir: Path, seed: int = SEED) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for split, problems in generate_splits(seed).items():
        versions = [(split, Problem.row)] + ([(f"{split}{CALCULATOR}", Problem.calculator_row)]
                                             if split in CALCULATOR_SPLITS else [])
        for name, row in versions:
            path = out_dir / f"{name}.jsonl"
            text = "".join(json.dumps(row(p), ensure_ascii=False) + "\n" for p in problems)
            path.write_text(text, encoding="utf-8", newline="\n")
            written[name] = path
    return written


SPLIT_ORDER = ["demo", "test", "train_100", "train_1k", "val", "exam_100"]


def card_table(seed: int = SEED) -> str:
    """Markdown table: rows per family and split."""
    splits = generate_splits(seed)
    counts = {s: Counter(p.family for p in splits[s]) for s in SPLIT_ORDER}
    lines = ["| family | " + " | ".join(SPLIT_ORDER) + " |", "|---" * (len(SPLIT_ORDER) + 1) + "|"]
    for name in sorted(FAMILIES):
        lines.append(f"| {name} | " + " | ".join(str(counts[s][name] or "") for s in SPLIT_ORDER) + " |")
    lines.append("| **total** | " + " | ".join(str(len(splits[s])) for s in SPLIT_ORDER) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=DATA_DIR)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--card", action="store_true", help="print the per-family count table instead of writing")
    args = ap.parse_args(argv)
    if args.card:
        print(card_table(args.seed))
        return 0
    for path in write_splits(args.out, args.seed).values():
        print(f"{path}: {sum(1 for _ in path.open(encoding='utf-8'))} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
