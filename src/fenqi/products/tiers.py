"""One pricing-tier vocabulary for the decision flow and the catalog (issue 24 item 9).

The decision flow assigns each approved applicant a pricing tier (`decision.pricing_tier`; the
shipped flow: `T1` best … `T4` highest fee table); a product's `[[tiers]]` say, for each tier
name, the limit ceiling and the discount on the product's installment fees. The two are loaded
from different files, so they are checked together: every tier the flow can assign must be a
tier of every product that has tiers, or loading fails with an error naming the flow, the tier
and the product (before, an unknown tier was silently dropped: every account had no tier and no
discount). A product without tiers is not tier-priced, and its accounts carry no tier.

The tiers a flow can assign are read from its JSON: the literal outputs of decision-table
rules, and expression nodes, that set `decision.pricing_tier` (an empty string means "no tier",
for outcomes other than approve).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from fenqi.errors import FenqiError
from fenqi.products.model import Product

FIELD = "decision.pricing_tier"
_LITERAL = re.compile(r"""^\s*(?:'([^']*)'|"([^"]*)")\s*$""")


class TierVocabularyError(FenqiError):
    code = "unknown_pricing_tier"
    http_status = 500


def _literal(cell: Any) -> str | None:
    if not isinstance(cell, str):
        return None
    found = _LITERAL.match(cell)
    if found is None:
        return None
    return found.group(1) if found.group(1) is not None else found.group(2)


def flow_pricing_tiers(graph: Mapping[str, Any]) -> set[str]:
    """The non-empty pricing tiers a JDM flow graph can assign (literal outputs only)."""
    tiers: set[str] = set()
    for node in graph.get("nodes", []):
        content = node.get("content") or {}
        if node.get("type") == "decisionTableNode":
            ids = [o.get("id") for o in content.get("outputs", []) if o.get("field") == FIELD]
            for rule in content.get("rules", []):
                for output_id in ids:
                    value = _literal(rule.get(output_id))
                    if value:
                        tiers.add(value)
        elif node.get("type") == "expressionNode":
            for expression in content.get("expressions", []):
                if expression.get("key") == FIELD:
                    value = _literal(expression.get("value"))
                    if value:
                        tiers.add(value)
    return tiers


def read_flow_graph(path: Path | None) -> tuple[dict[str, Any], str]:
    """The flow's JSON and its name (the shipped default flow when `path` is None)."""
    if path is None:
        text = resources.files("fenqi.risk.flows").joinpath("default.json").read_text("utf-8")
        return json.loads(text), "default.json"
    return json.loads(Path(path).read_text("utf-8")), str(path)


def check_tier_vocabulary(
    flow_tiers: set[str], flow_source: str, catalog: Mapping[str, Product]
) -> None:
    """Refuse a flow and a catalog that do not share the flow's pricing tiers."""
    for name in sorted(catalog):
        product = catalog[name]
        if not product.tiers:
            continue
        known = {t.name for t in product.tiers}
        missing = sorted(flow_tiers - known)
        if missing:
            raise TierVocabularyError(
                f"decision flow {flow_source} assigns pricing tier(s) {', '.join(missing)} "
                f"that product {name!r} does not define (its tiers: {', '.join(sorted(known))})",
                flow=flow_source,
                product=name,
                tier=missing[0],
            )
