from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from fenqi.risk.errors import FlowError
from fenqi.risk.flow import PROBES, load_flow


def _context(**applicant: Any) -> dict[str, Any]:
    ctx = copy.deepcopy(PROBES[0])
    score = applicant.pop("score", 650)
    ctx["applicant"].update(applicant)
    ctx["model"]["score"] = score
    return ctx


@pytest.mark.parametrize(
    ("applicant", "reason"),
    [
        ({"age": 17}, "P01_AGE_BELOW_MIN"),
        ({"age": 61}, "P02_AGE_ABOVE_MAX"),
        ({"identity_verified": False}, "P03_IDENTITY_UNVERIFIED"),
        ({"blacklisted": True}, "P04_BLACKLISTED"),
        ({"other_lenders_count": 5}, "P05_TOO_MANY_LENDERS"),
        ({"bureau_worst_dpd": 60}, "P06_BUREAU_DELINQUENT"),
        ({"score": 519}, "S01_SCORE_BELOW_CUTOFF"),
    ],
)
def test_default_flow_declines(applicant: dict[str, Any], reason: str) -> None:
    result = load_flow().evaluate(_context(**applicant))
    assert (result.outcome, result.reason_code, result.limit_fen) == ("decline", reason, 0)


@pytest.mark.parametrize(
    ("applicant", "outcome", "limit_fen", "tier"),
    [
        ({"score": 640, "monthly_income_fen": 2_500_000}, "approve", 5_000_000, "T1"),
        ({"score": 600, "monthly_income_fen": 1_000_000}, "approve", 2_000_000, "T2"),
        (
            {"score": 545, "monthly_income_fen": 100_000, "monthly_spend_fen": 0},
            "approve",
            500_000,
            "T3",
        ),
        # Spend counts as capacity at three times the monthly spend.
        (
            {"score": 545, "monthly_income_fen": 100_000, "monthly_spend_fen": 400_000},
            "approve",
            1_000_000,
            "T3",
        ),
        ({"score": 530}, "refer", 0, ""),
        ({"score": 530, "customer_tier": "existing"}, "approve", 300_000, "T4"),
        ({"score": 510, "customer_tier": "existing"}, "refer", 0, ""),
    ],
)
def test_default_flow_cutoffs_limits_and_pricing(
    applicant: dict[str, Any], outcome: str, limit_fen: int, tier: str
) -> None:
    result = load_flow().evaluate(_context(**applicant))
    assert (result.outcome, result.limit_fen, result.pricing_tier) == (outcome, limit_fen, tier)


def _default_graph() -> dict[str, Any]:
    path = Path(__file__).resolve().parents[2] / "src/fenqi/risk/flows/default.json"
    graph: dict[str, Any] = json.loads(path.read_text())
    return graph


def _write(tmp_path: Path, graph: Any) -> Path:
    path = tmp_path / "flow.json"
    path.write_text(graph if isinstance(graph, str) else json.dumps(graph))
    return path


def test_flow_version_changes_with_content(tmp_path: Path) -> None:
    graph = _default_graph()
    assert load_flow(_write(tmp_path, graph)).version == load_flow().version
    graph["nodes"][1]["content"]["rules"][0]["prescreen_i0"] = "< 20"
    assert load_flow(_write(tmp_path, graph)).version != load_flow().version


def _break_cell(graph: dict[str, Any]) -> None:
    graph["nodes"][1]["content"]["rules"][0]["prescreen_i0"] = "<<< 18 +"


def _drop_output(graph: dict[str, Any]) -> None:
    graph["nodes"] = [n for n in graph["nodes"] if n["id"] != "pricing"]
    graph["edges"] = [e for e in graph["edges"] if "pricing" not in (e["sourceId"], e["targetId"])]
    graph["edges"].append({"id": "x", "sourceId": "limit", "targetId": "response", "type": "edge"})


def _bad_outcome(graph: dict[str, Any]) -> None:
    graph["nodes"][2]["content"]["rules"][-1]["cutoff_o0"] = "'maybe'"


def _dangling_edge(graph: dict[str, Any]) -> None:
    graph["edges"][0]["targetId"] = "nowhere"


def _limit_for_decline(graph: dict[str, Any]) -> None:
    graph["nodes"][4]["content"]["rules"][0]["limit_o0"] = "100"


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (_break_cell, "node 'Pre-screen policy rules' rule 'prescreen_r0' column 'Age'"),
        (_drop_output, "decision.reason_code and decision.pricing_tier"),
        (_bad_outcome, "decision.outcome to 'maybe'"),
        (_dangling_edge, "points to a missing node"),
        (_limit_for_decline, "gave a limit to a decline"),
    ],
)
def test_broken_flows_are_refused_at_load(tmp_path: Path, breakage: Any, message: str) -> None:
    graph = _default_graph()
    breakage(graph)
    with pytest.raises(FlowError, match=message):
        load_flow(_write(tmp_path, graph))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"nodes": 5}', "'nodes' and 'edges' lists"),
        ('{"nodes": [], "edges": []}', "exactly one inputNode"),
    ],
)
def test_malformed_flow_files_are_refused(tmp_path: Path, content: str, message: str) -> None:
    with pytest.raises(FlowError, match=message):
        load_flow(_write(tmp_path, content))
    with pytest.raises(FlowError, match="cannot read flow"):
        load_flow(tmp_path / "missing.json")
