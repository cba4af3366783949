"""CRS's own regression suite through Bastion's WAF, in-process over real sockets.

Runs all of ``../shared/crs/tests/regression/tests`` the way ``bastion replay
--crs`` does and fails if a test outside ``crs_known_failures.txt`` fails, so a
regression in any operator, transformation, body processor or engine rule
shows up as the CRS tests it breaks.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from waf.ftw import iter_tests, load_test_files, run_tests
from waf.replay import in_process_target

CRS = Path(__file__).resolve().parents[3] / "shared" / "crs"
KNOWN = Path(__file__).with_name("crs_known_failures.txt")


def known_failures() -> dict[str, str]:
    out = {}
    for line in KNOWN.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            test_id, _, reason = line.partition(" ")
            out[test_id] = reason.strip()
    return out


@pytest.mark.timeout(900)
@pytest.mark.skipif(not (CRS / "tests" / "regression" / "tests").is_dir(),
                    reason="../shared/crs (OWASP CRS v4 and its regression tests) is absent")
async def test_crs_regression_suite_has_no_new_failures() -> None:
    tests = list(iter_tests(load_test_files([CRS / "tests" / "regression" / "tests"])))
    assert len(tests) == 5082
    async with in_process_target(CRS, None) as target:
        report = await run_tests(tests, target)
        failed = {c.test.id: c.reason for c in report.cases if c.outcome == "failed"}
        known = known_failures()
        new = {k: v for k, v in failed.items() if k not in known}
        if new:
            # A few tests race the log marker or the connection (921110-6 sends
            # a smuggled second request): judge a new failure only if it repeats.
            again = await run_tests([t for t in tests if t.id in new], target)
            new = {c.test.id: c.reason for c in again.cases if c.outcome == "failed"}
    print(f"CRS regression: {report.summary_line()}; known failures {len(known)}")
    assert not new, "tests that pass on main now fail:\n" + "\n".join(
        f"{k}: {v}" for k, v in sorted(new.items()))
    assert report.passed >= 5082 - len(known)
