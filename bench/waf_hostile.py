#!/usr/bin/env python3
"""CPU cost of WAF inspection on hostile-shaped input: Bastion against ModSecurity v3, CRS v4.

    python bench/waf_hostile.py [--crs PATH] [--paranoia 1] [--rounds 5]

A prefilter set (one RE2 DFA over hundreds of patterns) is cheap on text it
has seen the like of and costly on input unlike anything before: random
tokens, binary, punctuation noise, where its lazy DFA builds a new state at
nearly every byte. Bastion bounds that (token routing, a probe of long
values, a per-transaction set budget; see docs/waf.md); this measures what
an attacker can still make one request cost. Each shape is sent as a
urlencoded form of N fields of random values, every inspection with new
values, both engines on the same requests (bench/waf_inspect.py's engines),
medians of ``--rounds``. Verdicts are not compared: noise may or may not
look like an attack to either engine.
"""

from __future__ import annotations

import argparse
import random
import statistics
import string
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import quote_from_bytes

import waf_inspect as wi

_PRINTABLE = string.ascii_letters + string.digits + " .,-_:;!?'\"()[]{}<>/\\|@#$%^&*+=~`"
_TOKEN = string.ascii_letters + string.digits + "-_"

SHAPES: dict[str, Callable[[random.Random, int], bytes]] = {
    "random tokens": lambda rnd, n: "".join(rnd.choice(_TOKEN) for _ in range(n)).encode(),
    "printable noise": lambda rnd, n: "".join(rnd.choice(_PRINTABLE) for _ in range(n)).encode(),
    "random bytes": lambda rnd, n: bytes(rnd.randrange(1, 256) for _ in range(n)),
}
SIZES: tuple[tuple[int, int], ...] = ((10, 64), (10, 1000))


def form(rnd: random.Random, shape: str, fields: int, size: int) -> wi.BenchRequest:
    body = b"&".join(b"f%d=" % i + quote_from_bytes(SHAPES[shape](rnd, size)).encode()
                     for i in range(fields))
    return wi.post_request("hostile", shape, "/submit", "application/x-www-form-urlencoded", body)


def cost_ms(engine: wi.Engine, requests: Sequence[wi.BenchRequest]) -> float:
    times = []
    for req in requests:
        start = time.process_time()
        engine.run(req)
        times.append(time.process_time() - start)
    return statistics.median(times) * 1000


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--crs", default=str(wi.DEFAULT_CRS), help="CRS directory")
    p.add_argument("--paranoia", type=int, default=1)
    p.add_argument("--rounds", type=int, default=5, help="inspections per cell (median)")
    args = p.parse_args(argv)
    crs = Path(args.crs)
    engines: list[wi.Engine] = [wi.BastionEngine(crs, args.paranoia)]
    try:
        engines.append(wi.ModSecurityEngine(crs, args.paranoia))
    except ImportError:
        print("libmodsecurity is not installed: Bastion only")
    rnd = random.Random(7)
    print(f"# hostile input, CRS at paranoia {args.paranoia}, medians of {args.rounds}; "
          "CPU = time.process_time()\n")
    names = " | ".join(f"{e.name} ms" for e in engines)
    ratio = " | Bastion / ModSecurity" if len(engines) > 1 else ""
    print(f"| shape | fields x bytes | {names}{ratio} |")
    print("|---|---|" + "---:|" * (len(engines) + (1 if ratio else 0)))
    for shape in SHAPES:
        for fields, size in SIZES:
            requests = [form(rnd, shape, fields, size) for _ in range(args.rounds)]
            costs = [cost_ms(e, requests) for e in engines]
            cells = " | ".join(f"{c:.1f}" for c in costs)
            extra = f" | {costs[0] / costs[1]:.2f}x" if len(costs) > 1 else ""
            print(f"| {shape} | {fields} x {size} | {cells}{extra} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
