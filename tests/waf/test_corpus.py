"""Bastion's rule set on its own attack corpus: detection and false positives hold their floors.

`bastion replay --corpus attack-corpus/` (Bastion's rules, paranoia 1, in
process) must keep detecting at least the recorded share of attacks, overall
and per family, and block at most the recorded share of benign requests. The
floors live in tests/waf/corpus_floors.json; raise them when the rules get
better (docs/detection.md has the current figures).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FLOORS = json.loads((Path(__file__).parent / "corpus_floors.json").read_text())


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:  # type: ignore[type-arg]
    out = tmp_path_factory.mktemp("corpus") / "report.json"
    proc = subprocess.run(
        [sys.executable, "-m", "proxy.cli", "replay", "--corpus", "--paranoia", "1",
         "--json", str(out), str(REPO / "attack-corpus")],
        cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data: dict = json.loads(out.read_text())  # type: ignore[type-arg]
    return data


def test_overall_detection_and_false_positives_hold(report: dict) -> None:  # type: ignore[type-arg]
    summary = report["summary"]
    assert summary["attacks"] >= 1500 and summary["benign"] >= 1000
    assert summary["detection_pct"] >= FLOORS["detection_percent"], summary
    assert summary["false_positive_pct"] <= FLOORS["false_positive_percent"], summary


def test_every_family_holds_its_floor(report: dict) -> None:  # type: ignore[type-arg]
    families = report["families"]
    for name, floor in FLOORS["families"].items():
        assert name in families, f"family {name} vanished from the corpus"
        assert families[name]["pct"] >= floor, (name, families[name])
