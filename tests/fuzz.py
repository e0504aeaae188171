"""Seeded mutation of real shapes for the fuzz tests: JSON-like values and byte strings.

No library: a fixed ``random.Random`` seed makes every CI run try the same few thousand inputs, so a
failure reproduces with the printed case number. Mutations are the hostile ones we care about:
wrong types, out-of-range numbers, huge and odd strings, missing and extra keys, deep nesting,
flipped, cut, repeated and spliced bytes.
"""

from __future__ import annotations

import copy
import random
from typing import Any

ODD_VALUES: tuple[Any, ...] = (
    None,
    True,
    False,
    0,
    -1,
    2**53 - 1,
    2**63,
    -(2**63),
    1.5e300,
    -0.0,
    "",
    " ",
    "\x00",
    "\u202e\ufeff",
    "💥" * 40,
    "x" * 70_000,
    "$",
    "@",
    "!",
    "@room",
    "<!channel>",
    "../../etc/passwd",
    "http://evil.example:1/x",
    "//evil.example/x",
    [],
    [None],
    {},
    {"": None},
    [[[[[]]]]],
)


def mutate_value(value: Any, rng: random.Random, depth: int = 0) -> Any:
    """One random hostile change somewhere inside ``value`` (a copy; the seed stays intact)."""
    if (
        depth > 6
        or rng.random() < (0.03 if depth == 0 else 0.25)
        or not isinstance(value, dict | list)
        or not value
    ):
        return copy.deepcopy(rng.choice(ODD_VALUES))
    out = copy.copy(value)
    if isinstance(out, dict):
        key = rng.choice(list(out))
        roll = rng.random()
        if roll < 0.15:
            del out[key]
        elif roll < 0.25:
            out[rng.choice(["state_key", "unsigned", "m.relates_to", "@odata.id", "x" * 300])] = rng.choice(
                ODD_VALUES
            )
        else:
            out[key] = mutate_value(out[key], rng, depth + 1)
        return out
    index = rng.randrange(len(out))
    out[index] = mutate_value(out[index], rng, depth + 1)
    if rng.random() < 0.1:
        out.extend(copy.deepcopy(out) * rng.randint(1, 3))
    return out


def mutate(value: Any, rng: random.Random) -> Any:
    for _ in range(rng.randint(1, 4)):
        value = mutate_value(value, rng)
    return value


def mutate_bytes(data: bytes, rng: random.Random, *, others: tuple[bytes, ...] = ()) -> bytes:
    """Flip, cut, repeat, insert or splice bytes; a few changes per case."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        roll = rng.random()
        at = rng.randrange(len(out) + 1)
        if roll < 0.3 and out:
            out[min(at, len(out) - 1)] = rng.randrange(256)
        elif roll < 0.45:
            del out[at : at + rng.randint(1, 200)]
        elif roll < 0.6:
            piece = bytes(out[at : at + rng.randint(1, 50)])
            out[at:at] = piece * rng.randint(2, 50)
        elif roll < 0.75:
            out[at:at] = rng.choice(
                [
                    b"\x00",
                    b"\xff\xfe",
                    b"\r\n",
                    b"\n",
                    b"<",
                    b"</td></tr>",
                    b"9999999 ",
                    b"\xe2\x80",
                    b" " * 500,
                ]
            )
        elif roll < 0.9 and others:
            other = rng.choice(others)
            start = rng.randrange(len(other) + 1)
            out[at:at] = other[start : start + rng.randint(1, 2000)]
        else:
            del out[at:]
    return bytes(out)
