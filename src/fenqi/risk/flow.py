"""Decision flows: JDM graphs (GoRules JSON Decision Model) run by zen-engine.

A flow gets `{"applicant": {...policy fields...}, "model": {"score": int, "pd": float}}` and must
set `decision.outcome` (approve / decline / refer), `decision.reason_code`, `decision.limit_fen`
(integer fen) and `decision.pricing_tier`. Operators edit the JSON (by hand or in GoRules' editor);
nothing in code changes.

A flow is checked when loaded, and refused with a message naming the node and rule if it is not
JSON, lacks an input or output node, has an edge to a missing node, holds an expression that does
not compile, or does not produce the four outputs on probe applications. zen-engine would
otherwise treat a broken cell as "no match" and carry on silently.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from fenqi.risk.errors import FlowError

OUTCOMES = frozenset({"approve", "decline", "refer"})
FLOW_BYTES_MAX = 5_000_000
LIMIT_FEN_MAX = 100_000_000_00  # 100 million yuan: beyond this a limit is a typo, not policy
DEFAULT_FLOW = "default.json"

# Probe applications: every flow must produce valid outputs for these (a smoke test at load).
PROBES: tuple[dict[str, Any], ...] = tuple(
    {
        "applicant": {
            "age": age,
            "identity_verified": verified,
            "blacklisted": False,
            "other_lenders_count": 0,
            "bureau_worst_dpd": 0,
            "customer_tier": tier,
            "monthly_income_fen": 1_000_000,
            "monthly_spend_fen": 200_000,
        },
        "model": {"score": score, "pd": pd_},
    }
    for age, verified, tier, score, pd_ in (
        (30, True, "new", 650, 0.01),
        (30, True, "existing", 530, 0.15),
        (30, True, "new", 400, 0.6),
        (16, False, "new", 600, 0.02),
    )
)


@dataclass(frozen=True, slots=True)
class FlowResult:
    outcome: str
    reason_code: str
    limit_fen: int
    pricing_tier: str
    trace: dict[str, Any]


def _first_line(exc: BaseException) -> str:
    """zen-engine errors carry a Rust backtrace; the first line is the message."""
    return str(exc).split("\n\nStack backtrace")[0].strip().replace("\n\nCaused by:\n   ", ":")


def _check_expressions(node: dict[str, Any]) -> None:
    import zen

    name = node.get("name") or node.get("id")
    content = node.get("content") or {}
    if node.get("type") == "decisionTableNode":
        inputs = {i["id"]: i.get("name", i["id"]) for i in content.get("inputs", [])}
        outputs = {o["id"]: o.get("name", o["id"]) for o in content.get("outputs", [])}
        for rule in content.get("rules", []):
            for key, cell in rule.items():
                if key.startswith("_") or not isinstance(cell, str) or not cell.strip():
                    continue
                try:
                    if key in inputs:
                        zen.compile_unary_expression(cell)
                    elif key in outputs:
                        zen.compile_expression(cell)
                    else:
                        raise FlowError(
                            f"node {name!r} rule {rule.get('_id')!r}: cell {key!r} matches no "
                            "input or output column"
                        )
                except RuntimeError as exc:
                    column = inputs.get(key) or outputs.get(key)
                    raise FlowError(
                        f"node {name!r} rule {rule.get('_id')!r} column {column!r}: "
                        f"bad expression {cell!r}: {_first_line(exc)}",
                        node=str(name),
                    ) from exc
    elif node.get("type") == "expressionNode":
        for expression in content.get("expressions", []):
            try:
                zen.compile_expression(expression.get("value", ""))
            except RuntimeError as exc:
                raise FlowError(
                    f"node {name!r} expression {expression.get('key')!r}: bad expression "
                    f"{expression.get('value')!r}: {_first_line(exc)}",
                    node=str(name),
                ) from exc


def _check_graph(graph: Any) -> None:
    if (
        not isinstance(graph, dict)
        or not isinstance(graph.get("nodes"), list)
        or not isinstance(graph.get("edges"), list)
    ):
        raise FlowError("a flow is a JSON object with 'nodes' and 'edges' lists")
    ids = set()
    for index, node in enumerate(graph["nodes"]):
        if not isinstance(node, dict) or "id" not in node or "type" not in node:
            raise FlowError(f"node #{index} needs an 'id' and a 'type'")
        ids.add(node["id"])
    types = [n["type"] for n in graph["nodes"]]
    if types.count("inputNode") != 1 or "outputNode" not in types:
        raise FlowError("a flow needs exactly one inputNode and at least one outputNode")
    for edge in graph["edges"]:
        for end in ("sourceId", "targetId"):
            if not isinstance(edge, dict) or edge.get(end) not in ids:
                raise FlowError(
                    f"edge {edge.get('id') if isinstance(edge, dict) else edge!r} "
                    f"points to a missing node ({end})"
                )
    for node in graph["nodes"]:
        _check_expressions(node)


class DecisionFlow:
    """A loaded, checked flow; read-only after loading, so one instance serves every request."""

    def __init__(self, content: bytes, source: str) -> None:
        import zen

        if len(content) > FLOW_BYTES_MAX:
            raise FlowError(f"flow {source} is larger than {FLOW_BYTES_MAX} bytes")
        try:
            graph = json.loads(content)
        except ValueError as exc:
            raise FlowError(f"flow {source} is not valid JSON: {exc}", source=source) from exc
        _check_graph(graph)
        meta = graph.get("fenqi") if isinstance(graph.get("fenqi"), dict) else {}
        self.flow_id = str(meta.get("flow_id", Path(source).stem))
        # The version hashes the canonical JSON, so re-indenting a file does not change it.
        canonical = json.dumps(graph, sort_keys=True, separators=(",", ":")).encode()
        self.version = f"{self.flow_id}@{hashlib.sha256(canonical).hexdigest()[:12]}"
        self.source = source
        try:
            self._decision = zen.ZenEngine().create_decision(content.decode("utf-8"))
            self._decision.validate()
        except RuntimeError as exc:
            raise FlowError(f"flow {source} refused by zen-engine: {_first_line(exc)}") from exc
        for probe in PROBES:
            self.evaluate(probe)

    def evaluate(self, context: dict[str, Any]) -> FlowResult:
        try:
            response = self._decision.evaluate(context)
        except RuntimeError as exc:
            raise FlowError(f"flow {self.version} failed: {_first_line(exc)}") from exc
        decision = response.get("result", {}).get("decision")
        if not isinstance(decision, dict):
            raise FlowError(f"flow {self.version} did not set 'decision'")
        outcome = decision.get("outcome")
        if outcome not in OUTCOMES:
            raise FlowError(
                f"flow {self.version} set decision.outcome to {outcome!r}; expected one of "
                f"{sorted(OUTCOMES)}"
            )
        limit = decision.get("limit_fen")
        if (
            isinstance(limit, bool)
            or not isinstance(limit, int | float)
            or not float(limit).is_integer()
            or not 0 <= limit <= LIMIT_FEN_MAX
        ):
            raise FlowError(
                f"flow {self.version} set decision.limit_fen to {limit!r}; "
                f"expected whole fen in 0..{LIMIT_FEN_MAX}"
            )
        reason, tier = decision.get("reason_code"), decision.get("pricing_tier")
        if not isinstance(reason, str) or not isinstance(tier, str):
            raise FlowError(
                f"flow {self.version} must set decision.reason_code and "
                "decision.pricing_tier as text"
            )
        if outcome != "approve" and limit != 0:
            raise FlowError(f"flow {self.version} gave a limit to a {outcome} outcome")
        return FlowResult(outcome, reason, int(limit), tier, response.get("result", {}))


def load_flow(path: Path | str | None = None) -> DecisionFlow:
    """Load and check a flow file; `None` loads the default flow shipped with fenqi."""
    if path is None:
        content = resources.files("fenqi.risk").joinpath("flows", DEFAULT_FLOW).read_bytes()
        return DecisionFlow(content, DEFAULT_FLOW)
    path = Path(path)
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise FlowError(f"cannot read flow {path}: {exc.strerror}", source=str(path)) from exc
    return DecisionFlow(content, str(path))
