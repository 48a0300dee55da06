"""`fenqi whatif` with a broken flow file and with an arm that approves nobody (issue 24 items
19 and 2), and the labels of `fenqi simulate`'s table (yuan are not labelled `_fen`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import fenqi.risk as fenqi_risk
from fenqi.simulation.cli import metric_label

DEFAULT_FLOW = Path(fenqi_risk.__file__).parent / "flows" / "default.json"


def fenqi(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fenqi.cli", *args],
        capture_output=True, text=True, cwd=cwd, timeout=600,
        env={**os.environ, "FENQI_KEYS_FILE": str(cwd / "keys.json")},
    )  # fmt: skip


def test_a_broken_flow_is_refused_before_any_arm_runs(tmp_path: Path, models_dir: Path) -> None:
    flow = json.loads(DEFAULT_FLOW.read_text())
    cutoff = next(n for n in flow["nodes"] if n["id"] == "cutoff")
    cutoff["content"]["rules"][1]["cutoff_i2"] = ">= = 520"  # does not compile
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(flow))
    out = fenqi(
        "whatif", "--flow", str(DEFAULT_FLOW), "--flow", str(broken), "--shoppers", "20",
        "--months", "1", "--models-dir", str(models_dir), "--workdir", str(tmp_path / "arms"),
        cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 2, out.stdout
    assert "bad expression '>= = 520'" in out.stderr and "[risk.bad_flow]" in out.stderr
    assert "Traceback" not in out.stderr
    assert not list((tmp_path / "arms").glob("*.sqlite"))  # no arm ran
    not_json = tmp_path / "not.json"
    not_json.write_text("{")
    out = fenqi("whatif", "--flow", str(DEFAULT_FLOW), "--flow", str(not_json), cwd=tmp_path)
    assert out.returncode == 2 and f"flow {not_json} is not valid JSON" in out.stderr


def test_an_arm_that_approves_nobody_compares(tmp_path: Path, models_dir: Path) -> None:
    """Its end-of-day runs meet a book without credit accounts every night."""
    flow = json.loads(DEFAULT_FLOW.read_text())
    cutoff = next(n for n in flow["nodes"] if n["id"] == "cutoff")
    for rule in cutoff["content"]["rules"]:
        if rule["cutoff_o0"] != "'decline'":
            rule["cutoff_i2"] = ">= 100000"  # no score reaches it
    nobody = tmp_path / "nobody.json"
    nobody.write_text(json.dumps(flow))
    out = fenqi(
        "whatif", "--flow", str(DEFAULT_FLOW), "--flow", str(nobody), "--shoppers", "40",
        "--months", "1", "--models-dir", str(models_dir), "--out", str(tmp_path / "w.html"),
        "--json",
        cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    data = json.loads(out.stdout)
    rows = {r["metric"]: r for r in data["comparison"]}
    default, strict = (a["name"] for a in data["arms"])
    assert rows["approval_rate_bp"][strict] == 0 < rows["approval_rate_bp"][default]
    assert data["arms"][1]["counts"]["eod_runs"] == 30


def test_simulate_labels_say_what_the_values_are() -> None:
    assert metric_label("lent_fen") == ("lent (net of refunds)", "fen")
    assert metric_label("bad_debt_fen") == ("bad debt", "fen")
    assert metric_label("approval_rate_bp") == ("approval rate", "bp")
    assert metric_label("purchases") == ("purchases", "")


def test_a_funding_mix_under_the_floor_is_refused_before_any_arm_runs(
    tmp_path: Path, models_dir: Path
) -> None:
    """`--funding DIR`: each folder is loaded with the shipped catalog and checked first."""
    from fenqi.funding.loader import CATALOG_DIR

    under = tmp_path / "bank_80" / "programs"
    under.mkdir(parents=True)
    shipped = (CATALOG_DIR / "programs" / "colending_example.toml").read_text()
    (under / "colending_example.toml").write_text(
        shipped.replace("share_bp = 5000", "share_bp = 6000")
        .replace("share_bp = 2000", "share_bp = 2000")
        .replace("share_bp = 3000", "share_bp = 2000")
    )
    out = fenqi(
        "whatif", "--funding", "shipped", "--funding", str(tmp_path / "bank_80"),
        "--shoppers", "20", "--months", "1", "--models-dir", str(models_dir),
        "--workdir", str(tmp_path / "arms"),
        cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode != 0
    assert "under the regulatory floor" in out.stderr + out.stdout
    assert "colending_example.toml" in out.stderr + out.stdout
    assert not list((tmp_path / "arms").glob("*.sqlite"))  # no arm ran
