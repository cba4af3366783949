#!/usr/bin/env python3
"""Inspection cost of Bastion's own rule set against OWASP CRS v4, both at paranoia 1.

    python bench/rules_cost.py [--quick] [--crs PATH] [--paranoia 1]

The same engine (Bastion's), the same four requests as bench/waf_inspect.py
(a browser GET, a 1 KB form, a 4 KB JSON order, an attack), each inspection
on a fresh variant of its request; only the rule set differs: Bastion's
``rules/`` (what the ``waf`` plugin loads by default) or CRS as shipped. The
two are measured interleaved in one run and printed as a ratio (below 1:
Bastion's rules are cheaper). Both must block the attack and pass the rest.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import proxy_throughput as pt
import waf_inspect as wi

from proxy.worker import settle_gc
from waf.engine import build_ruleset, builtin_rule_files


class RulesEngine(wi.BastionEngine):
    """Bastion's engine over Bastion's own rule set."""

    name = "Bastion rules"

    def __init__(self, paranoia: int) -> None:
        t0 = time.process_time()
        self.ruleset = build_ruleset(engine="On", paranoia=paranoia, files=builtin_rule_files())
        self.load_seconds = time.process_time() - t0
        settle_gc()
        self.rule_count = sum(1 for r in self.ruleset.rules if r.marker is None)


class CrsEngine(wi.BastionEngine):
    name = "CRS v4"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--crs", type=Path, default=wi.DEFAULT_CRS)
    p.add_argument("--paranoia", type=int, default=1, choices=range(1, 5))
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    iterations, repeats, warmup = (30, 3, 200) if args.quick else (200, 5, 400)
    if not (args.crs / "rules").is_dir():
        print(f"rules_cost: no CRS at {args.crs} (--crs)", file=sys.stderr)
        return 2

    engines: list[wi.BastionEngine] = [RulesEngine(args.paranoia),
                                       CrsEngine(args.crs, args.paranoia)]
    requests = wi.bench_requests()
    print(f"# rule-set cost, paranoia {args.paranoia}; {pt.machine_description()}")
    for e in engines:
        print(f"# {e.name}: {e.rule_count} rules, loaded in {e.load_seconds:.2f} s CPU")
    for req in requests:
        for e in engines:
            o = e.outcome(req)
            verdict = f"blocked {o.status}" if o.status else "passed"
            logged = " ".join(str(i) for i in o.ids((1, 2))) or "-"
            print(f"  {req.key:7} {e.name:14} {verdict}  logged: {logged}")
            if (o.status == 403) != req.attack:
                print(f"rules_cost: {e.name} {'passed' if req.attack else 'blocked'} "
                      f"{req.key}; the comparison would be meaningless", file=sys.stderr)
                return 1

    samples: dict[tuple[str, str], list[float]] = {}
    for req in requests:
        for e in engines:
            for _ in range(warmup):
                e.run(wi.vary(req))
    for rep in range(repeats):
        for req in requests:
            line = [f"  [rep {rep + 1}] {req.key:7}"]
            for e in engines:
                us = wi.cpu_us_per_request(e.run, req, iterations)
                samples.setdefault((req.key, e.name), []).append(us)
                line.append(f"{e.name} {us:8.0f} us")
            print("  ".join(line), flush=True)

    own, crs = engines[0].name, engines[1].name
    print(f"\n| request | {own} µs/req | {crs} µs/req | {own} / {crs} |")
    print("|---|---:|---:|---:|")
    for req in requests:
        a = statistics.median(samples[(req.key, own)])
        b = statistics.median(samples[(req.key, crs)])
        print(f"| {req.label} | {a:.0f} | {b:.0f} | {a / b:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
