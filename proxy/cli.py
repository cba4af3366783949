"""The ``bastion`` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Coroutine, Sequence
from importlib.metadata import entry_points
from typing import Any, TypeVar

T = TypeVar("T")


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s",
        stream=sys.stderr,
    )


def run_loop(coro: Coroutine[Any, Any, T]) -> T:
    """Run on uvloop where it is installed, asyncio otherwise."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    result: T = uvloop.run(coro)
    return result


def _cmd_run(args: argparse.Namespace) -> int:
    # Workers share metrics through files in this directory; prometheus_client
    # reads the variable when first imported, so set it before anything does.
    metrics_dir = tempfile.mkdtemp(prefix="bastion-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        from proxy.supervisor import Supervisor

        sup = Supervisor(args.config, workers=args.workers, listen=args.listen,
                         admin=args.admin, watch_interval=args.watch_interval,
                         log_level=args.log_level)
        return run_loop(sup.run())
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _cmd_check(args: argparse.Namespace) -> int:
    from proxy.config import ConfigError, load_config
    from proxy.metrics import Metrics
    from proxy.supervisor import validate_build

    try:
        loaded = load_config(args.config)
        asyncio.run(validate_build(loaded, Metrics(), start=False))
    except ConfigError as exc:
        for issue in exc.issues:
            line = f":{issue.line}" if issue.line else ""
            print(f"{exc.source}{line}: {issue.path or '<root>'}: {issue.message}",
                  file=sys.stderr)
        print(f"{len(exc.issues)} error(s)", file=sys.stderr)
        return 2
    cfg = loaded.config
    plugins = sorted({n for r in cfg.routes for n in r.plugins} | set(cfg.plugins))
    print(f"{loaded.source}: OK ({len(cfg.routes)} routes, {len(cfg.services)} services, "
          f"plugins: {', '.join(plugins) or 'none'})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bastion", description="Bastion security gateway")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the gateway")
    run.add_argument("-c", "--config", help="config file (default: the embedded demo config)")
    run.add_argument("--listen", action="append", metavar="HOST:PORT",
                     help="listen here instead of the config's listeners (repeatable)")
    run.add_argument("--admin", metavar="HOST:PORT", help="admin listener address")
    run.add_argument("--workers", type=int, default=1, metavar="N",
                     help="worker processes sharing the port (default 1)")
    run.add_argument("--watch-interval", type=float, default=1.0, metavar="SECONDS",
                     help="how often to check the config file for changes")
    run.add_argument("--log-level", default="info",
                     choices=["debug", "info", "warning", "error"])
    run.set_defaults(func=_cmd_run)

    check = sub.add_parser("check", help="validate a config file")
    check.add_argument("-c", "--config", help="config file (default: the embedded one)")
    check.set_defaults(func=_cmd_check)

    # Feature packages add their own commands (waf: `replay`) the way they add
    # plugins: through an entry-point group, so the kernel imports none of them.
    for ep in sorted(entry_points(group="bastion.commands"), key=lambda e: e.name):
        try:
            ep.load()(sub)
        except Exception as exc:  # a broken extension must not break `bastion run`
            logging.getLogger("bastion.cli").warning("command %s unavailable: %s", ep.name, exc)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "workers", 1) < 1:
        print("bastion: --workers must be at least 1", file=sys.stderr)
        return 2
    setup_logging(getattr(args, "log_level", "warning"))
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
