"""One pricing-tier vocabulary (issue 24 item 9): every tier the decision flow assigns is a
tier of every tiered product, checked when a flow and the catalog are loaded together."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fenqi.clock import FixedClock
from fenqi.context import build_context
from fenqi.products import load_catalog
from fenqi.products.tiers import (
    TierVocabularyError,
    check_tier_vocabulary,
    flow_pricing_tiers,
    read_flow_graph,
)
from fenqi.settings import Settings

CATALOG = load_catalog(2400)


def test_the_shipped_flow_and_catalog_share_one_vocabulary() -> None:
    graph, source = read_flow_graph(None)
    tiers = flow_pricing_tiers(graph)
    assert tiers == {"T1", "T2", "T3", "T4"}
    check_tier_vocabulary(tiers, source, CATALOG)  # no error
    for product in CATALOG.values():
        assert {t.name for t in product.tiers} in (set(), tiers), product.name


def test_an_unknown_tier_is_a_load_error_naming_flow_and_product(tmp_path: Path) -> None:
    graph, _ = read_flow_graph(None)
    for node in graph["nodes"]:
        for rule in (node.get("content") or {}).get("rules", []):
            if rule.get("pricing_o0") == "'T1'":
                rule["pricing_o0"] = "'gold'"
    flow = tmp_path / "gold.json"
    flow.write_text(json.dumps(graph))
    assert "gold" in flow_pricing_tiers(json.loads(flow.read_text()))
    with pytest.raises(TierVocabularyError) as err:
        check_tier_vocabulary(flow_pricing_tiers(graph), str(flow), CATALOG)
    assert "gold" in err.value.message and str(flow) in err.value.message
    assert err.value.detail["product"] in CATALOG
    # loading the system with that flow fails the same way, before any decision
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'x.sqlite'}", risk_flow_file=flow)
    ctx = build_context(settings, FixedClock.on(__import__("datetime").date(2026, 1, 2)))
    with pytest.raises(TierVocabularyError):
        _ = ctx.underwriter
    ctx.engine.dispose()


def test_expression_nodes_count_too() -> None:
    graph = {
        "nodes": [
            {
                "id": "e",
                "type": "expressionNode",
                "content": {
                    "expressions": [
                        {"key": "decision.pricing_tier", "value": '"T9"'},
                        {"key": "decision.other", "value": "'x'"},
                    ]
                },
            }
        ]
    }
    assert flow_pricing_tiers(graph) == {"T9"}
