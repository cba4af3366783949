"""``bastion replay``: run go-ftw regression suites (such as CRS's) against the gateway.

    bastion replay --crs ~/coreruleset --url http://127.0.0.1:8080 --log /var/log/bastion/audit.log
    bastion replay tests/ --url http://127.0.0.1:8080 --log audit.log \\
        --overrides overrides.yaml --exclude '^920100-' --json report.json

With ``--url`` the tests go to a running gateway, whose WAF must log the
``X-CRS-Test`` marker requests to ``--log`` (see :class:`waf.ftw.LiveTarget`).
Without it, Bastion's own gateway is started in-process (over loopback sockets) with
the WAF plugin and the CRS from ``--crs``, set up as CRS's own test suite expects.

Exit status: 0 when every selected test passes, 1 when any fails, 2 on usage or
configuration errors (bad arguments, unreadable tests, a target that cannot be reached
or does not log markers).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import ssl
import sys
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from waf.albedo import albedo_app
from waf.ftw import (
    ConsoleReporter,
    FtwError,
    FtwTest,
    LiveTarget,
    Overrides,
    Target,
    TargetError,
    iter_tests,
    load_overrides,
    load_test_files,
    run_tests,
    write_json_report,
)

__all__ = ["ReplayError", "add_replay_command", "cmd_replay", "in_process_target", "main"]

CRS_TESTS = Path("tests") / "regression" / "tests"


class ReplayError(Exception):
    """A usage or configuration error (exit status 2)."""


@dataclass(frozen=True)
class ReplayPlan:
    tests: list[FtwTest]
    files: int
    include: re.Pattern[str] | None
    exclude: re.Pattern[str] | None
    overrides: Overrides | None
    url: str | None
    host: str
    port: int
    tls: bool
    log: Path | None
    crs: Path | None
    paranoia: int | None
    jobs: int
    timeout: float
    json: Path | None
    failures_only: bool


def add_replay_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]
                       ) -> argparse.ArgumentParser:
    """Add ``replay`` to a ``bastion`` sub-command parser."""
    p = subparsers.add_parser(
        "replay", help="run go-ftw regression tests (e.g. the CRS suite) against the gateway",
        description="Run go-ftw YAML regression tests against the gateway and compare what "
                    "the WAF logged with what each test expects. Exit status: 0 all passed, "
                    "1 some failed, 2 usage or configuration error.")
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="test files or directories (*.yaml, *.yml, searched recursively); "
                        "default: CRS_DIR/tests/regression/tests")
    p.add_argument("--crs", metavar="CRS_DIR", type=Path,
                   help="a CRS checkout: its tests are the default PATH, and the in-process "
                        "gateway loads its rules")
    p.add_argument("--url", metavar="URL",
                   help="a running gateway to test, e.g. http://127.0.0.1:8080 "
                        "(default: start one in-process)")
    p.add_argument("--log", metavar="FILE", type=Path,
                   help="the log the gateway's WAF writes (required with --url)")
    p.add_argument("--include", metavar="REGEX",
                   help="run only tests whose '<rule_id>-<test_id>' matches (wins over "
                        "--exclude)")
    p.add_argument("--exclude", metavar="REGEX",
                   help="skip tests whose '<rule_id>-<test_id>' matches")
    p.add_argument("--overrides", metavar="FILE", type=Path,
                   help="go-ftw platform overrides: replace expected outputs per test")
    p.add_argument("--json", metavar="REPORT", type=Path, help="also write a JSON report here")
    p.add_argument("--paranoia", metavar="N", type=int, choices=range(1, 5),
                   help="CRS paranoia level 1-4 for the in-process gateway (default 4, as "
                        "the CRS tests expect)")
    p.add_argument("-j", "--jobs", metavar="N", type=int, default=1,
                   help="tests in flight at once (default 1). Each stage's marker window "
                        "is still exclusive; only waiting for the log and checking overlap")
    p.add_argument("--timeout", metavar="SECONDS", type=float, default=3.0,
                   help="how long to wait for a response (default 3)")
    p.add_argument("--failures-only", action="store_true",
                   help="print result lines for failed tests only")
    p.set_defaults(func=cmd_replay)
    return p


def _regex(pattern: str | None, option: str) -> re.Pattern[str] | None:
    if pattern is None:
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ReplayError(f"{option}: invalid regex {pattern!r}: {exc}") from exc


def plan_replay(args: argparse.Namespace) -> ReplayPlan:
    """Check the arguments and load everything; raises ReplayError or FtwError."""
    if args.jobs < 1:
        raise ReplayError("-j must be at least 1")
    if args.timeout <= 0:
        raise ReplayError("--timeout must be positive")
    crs: Path | None = args.crs
    if crs is not None and not crs.is_dir():
        raise ReplayError(f"--crs {crs}: not a directory")
    paths = [Path(p) for p in args.paths]
    if not paths:
        if crs is None:
            raise ReplayError("give test PATHs or --crs CRS_DIR")
        paths = [crs / CRS_TESTS]
        if not paths[0].is_dir():
            raise ReplayError(f"--crs {crs}: no {CRS_TESTS} directory")

    url: str | None = args.url
    host, port, tls = "", 0, False
    if url is not None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ReplayError(f"--url {url}: expected http://HOST[:PORT] or https://...")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise ReplayError(f"--url {url}: {exc}") from exc
        host, tls = parts.hostname, parts.scheme == "https"
        if args.log is None:
            raise ReplayError("--url needs --log FILE: the log the gateway's WAF writes")
        if args.paranoia is not None:
            raise ReplayError("--paranoia configures the in-process gateway; with --url, set "
                              "the paranoia level in the gateway's own CRS setup")
        if not args.log.parent.is_dir():
            raise ReplayError(f"--log {args.log}: no directory {args.log.parent}")

    files = load_test_files(paths)
    return ReplayPlan(
        tests=list(iter_tests(files)), files=len(files),
        include=_regex(args.include, "--include"), exclude=_regex(args.exclude, "--exclude"),
        overrides=load_overrides(args.overrides) if args.overrides is not None else None,
        url=url, host=host, port=port, tls=tls, log=args.log, crs=crs,
        paranoia=args.paranoia, jobs=args.jobs, timeout=args.timeout, json=args.json,
        failures_only=args.failures_only)


@contextlib.asynccontextmanager
async def in_process_target(crs: Path | None, paranoia: int | None,
                            read_timeout: float = 3.0) -> AsyncIterator[Target]:
    """Bastion's own gateway, started in this process, in front of an albedo backend.

    With ``crs`` the WAF is set up the way CRS's regression suite expects its
    engine under test (DetectionOnly, blocking paranoia 4, the 900005 setup
    rule and the 999999 log marker); otherwise it runs Bastion's default rules
    at ``paranoia`` (1 unless given). Requests go over real loopback sockets,
    and the runner reads the WAF's audit log, as it would from a remote gateway.
    """
    from aiohttp import web

    from proxy.config import parse_config
    from proxy.gateway import Gateway
    from proxy.supervisor import site_port
    from waf.engine import CRS_TEST_SETUP

    if crs is None:
        raise ReplayError("the in-process mode needs --crs CRS_DIR until Bastion's own rule set "
                          "exists; or run a gateway and pass --url URL --log FILE")
    runner = web.AppRunner(albedo_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    backend_port = site_port(site)
    crs_dir = os.path.abspath(crs)  # noqa: ASYNC240 - once, before serving
    with tempfile.TemporaryDirectory(prefix="bastion-replay-") as tmp:
        audit = Path(tmp) / "audit.log"
        audit.touch()
        waf: dict[str, Any] = {
            "mode": "detect", "crs": str(crs_dir), "audit_log": str(audit),
            "request_body_overflow": "inspect_prefix",
            "response_body": {"enabled": True,
                              "mime_types": ["text/plain", "text/html", "text/xml",
                                             "application/json"]},
        }
        if paranoia is None:
            waf["directives"] = CRS_TEST_SETUP
        else:
            waf["paranoia"] = paranoia
            waf["directives"] = CRS_TEST_SETUP.replace("blocking_paranoia_level=4",
                                                       f"blocking_paranoia_level={paranoia}")
        config = {
            "listeners": [{"address": "127.0.0.1:0"}],
            "access_log": {"enabled": False},
            # CRS's tests send what real attackers send: long URLs, many and
            # large headers, odd bodies. The WAF, not the front end, must judge.
            "limits": {"max_header_bytes": 1024 * 1024, "max_url_bytes": 64 * 1024,
                       "max_headers": 1000, "max_body_bytes": 0,
                       "client_header_timeout": read_timeout,
                       "client_body_timeout": read_timeout},
            "services": {"albedo": {"endpoints": [{"url": f"http://127.0.0.1:{backend_port}"}],
                                    "retries": {"attempts": 0}}},
            "routes": [{"name": "all", "service": "albedo"}],
            "plugins": {"waf": waf},
        }
        gateway = Gateway(parse_config(yaml.safe_dump(config), "<replay>"))
        await gateway.start()
        try:
            host, port = gateway.addresses[0]
            async with LiveTarget(host, port, audit, timeout=read_timeout) as target:
                yield target
        finally:
            await gateway.stop()
            await runner.cleanup()


def open_target(plan: ReplayPlan) -> AbstractAsyncContextManager[Target]:
    if plan.url is None:
        return in_process_target(plan.crs, plan.paranoia, plan.timeout)
    assert plan.log is not None
    ssl_context = ssl.create_default_context() if plan.tls else None
    return LiveTarget(plan.host, plan.port, plan.log, timeout=plan.timeout, ssl=ssl_context,
                      concurrency=plan.jobs)


async def replay(plan: ReplayPlan) -> int:
    target_context = open_target(plan)
    where = plan.url or "the in-process gateway"
    print(f"replaying {len(plan.tests)} tests from {plan.files} files against {where}",
          file=sys.stderr, flush=True)
    reporter = ConsoleReporter(failures_only=plan.failures_only)
    async with target_context as target:
        run = await run_tests(plan.tests, target, include=plan.include, exclude=plan.exclude,
                              overrides=plan.overrides, concurrency=plan.jobs,
                              reporter=reporter)
    reporter.end(run)
    if plan.json is not None:
        write_json_report(run, plan.json)
    return 0 if run.failed == 0 else 1


def cmd_replay(args: argparse.Namespace) -> int:
    try:
        plan = plan_replay(args)
        return asyncio.run(replay(plan))
    except (ReplayError, FtwError) as exc:  # TargetError included
        prefix = "aborted: " if isinstance(exc, TargetError) else ""
        print(f"bastion replay: {prefix}{exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. the JSON report cannot be written
        print(f"bastion replay: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bastion replay: interrupted", file=sys.stderr)
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m waf.replay ARGS`` is ``bastion replay ARGS``."""
    parser = argparse.ArgumentParser(prog="bastion")
    add_replay_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["replay", *(sys.argv[1:] if argv is None else argv)])
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
