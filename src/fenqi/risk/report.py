"""Evaluation of a model on a labelled table, and the HTML/JSON report with Plotly charts.

The HTML embeds plotly.js once (no CDN: fenqi runs where there is no internet); the JSON next to
it holds the same figures (Plotly JSON) and the same tables, for dashboards and diffing.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fenqi.risk import fairness, metrics, validation
from fenqi.risk.data import fingerprint_frame, resolve_target, target_vector
from fenqi.risk.errors import BadDataError
from fenqi.risk.registry import LoadedModel

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go


def evaluate_frame(
    loaded: LoadedModel, frame: pd.DataFrame, target_column: str, bad_value: str | None = None
) -> dict[str, Any]:
    """Every figure of model quality on this table: summary, calibration, gains, PSI."""
    source = "--bad-value"
    if bad_value is None and loaded.manifest["target"]["column"] == target_column:
        bad_value = loaded.manifest["target"]["bad_label"]
        source = f"the bad label of model {loaded.model_id} (pass --bad-value to override):"
    target = resolve_target(frame, target_column, bad_value, source)
    y = target_vector(frame, target)
    matrix = loaded.matrix(frame)
    pd_ = loaded.model.predict_pd(matrix)
    scores = loaded.model.scale.score_from_pd(pd_)
    out: dict[str, Any] = {
        **metrics.summary(y, pd_).to_dict(),
        **validation.intervals(y, pd_),
        "model_id": loaded.model_id,
        "sample": {
            "rows": len(frame),
            "bads": int(y.sum()),
            "fingerprint_sha256": fingerprint_frame(frame),
            "model_trained_on": loaded.manifest.get("training_data", {}),
            "same_data_as_training": fingerprint_frame(frame)
            == loaded.manifest.get("training_data", {}).get("fingerprint_sha256"),
        },
        "hosmer_lemeshow": validation.hosmer_lemeshow(y, pd_),
        "calibration": metrics.calibration_table(y, pd_),
        "gains": metrics.gains_table(y, pd_),
        "score_bands": validation.score_bands(y, pd_, loaded.model.scale),
        "information_value": validation.information_values(matrix, y, loaded.specs),
    }
    reference = loaded.manifest.get("score_reference", {}).get("deciles")
    if reference:
        out["psi_vs_training"] = metrics.psi_against_deciles(np.asarray(reference), scores)
    feature_reference = loaded.manifest.get("feature_reference")
    if feature_reference:
        out["feature_psi_vs_training"] = validation.feature_psi(
            feature_reference, matrix, loaded.specs
        )
    importance = getattr(loaded.model, "feature_importance", None)
    if importance is not None:
        out["feature_importance_gain"] = importance()
    if loaded.manifest.get("warnings"):
        out["model_warnings"] = loaded.manifest["warnings"]
    out["_arrays"] = {"y": y, "pd": pd_, "score": scores}
    out["_model"] = loaded
    out["_frame"] = frame
    return out


def add_groups(evaluation: dict[str, Any], columns: list[str], cutoff: float) -> None:
    """Approval and bad rates by group at a score cut-off, with the adverse-impact ratio."""
    frame = evaluation["_frame"]
    arrays = evaluation["_arrays"]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise BadDataError(f"--group names columns not in the data: {missing}")
    evaluation["groups"] = {
        "cutoff": cutoff,
        "tables": {
            c: fairness.group_table(
                frame[c].to_numpy(dtype=object), arrays["y"], arrays["score"], cutoff
            )
            for c in columns
        },
    }


def add_comparison(evaluation: dict[str, Any], challenger: LoadedModel) -> None:
    """DeLong's paired test of this model (A, champion) against a challenger (B) on the rows."""
    arrays = evaluation["_arrays"]
    test = validation.delong_test(
        arrays["y"], arrays["pd"], challenger.predict_pd(evaluation["_frame"])
    )
    evaluation["comparison"] = {
        "champion": evaluation["model_id"],
        "challenger": challenger.model_id,
        **test,
    }


def stability(loaded: LoadedModel, expected: pd.DataFrame, actual: pd.DataFrame) -> dict[str, Any]:
    """PSI of the score and of every feature between two samples (e.g. last month vs this).

    Categorical features compare label shares (by code), numeric ones the expected sample's
    deciles. Missing values are left out of each feature's PSI.
    """
    m_expected, m_actual = loaded.matrix(expected), loaded.matrix(actual)
    scale = loaded.model.scale
    features: dict[str, float] = {}
    for j, spec in enumerate(loaded.specs):
        e, a = m_expected[:, j], m_actual[:, j]
        if np.isnan(e).all() or np.isnan(a).all():
            continue
        features[spec.name] = metrics.psi(
            e, a, bins=min(10, max(len(spec.categories), 1)) if spec.categories else 10
        )
    return {
        "model_id": loaded.model_id,
        "n_expected": len(expected),
        "n_actual": len(actual),
        "score_psi": metrics.psi(
            scale.score_from_pd(loaded.model.predict_pd(m_expected)),
            scale.score_from_pd(loaded.model.predict_pd(m_actual)),
        ),
        "feature_psi": dict(sorted(features.items(), key=lambda kv: -kv[1])),
    }


def public(evaluation: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in evaluation.items() if not k.startswith("_")}


def figures(evaluation: dict[str, Any]) -> dict[str, go.Figure]:
    import plotly.graph_objects as go

    arrays = evaluation["_arrays"]
    y, pd_, score = arrays["y"], arrays["pd"], arrays["score"]
    if len(y) == 0:
        raise BadDataError("nothing to report on")
    fpr, tpr, _ = metrics.roc_points(y, pd_)
    roc = go.Figure(
        [
            go.Scatter(x=fpr, y=tpr, name=f"ROC (AUC {evaluation['auc']:.4f})", mode="lines"),
            go.Scatter(x=[0, 1], y=[0, 1], name="chance", mode="lines", line={"dash": "dash"}),
        ]
    )
    roc.update_layout(
        title="ROC",
        xaxis_title="false positive rate (goods declined)",
        yaxis_title="true positive rate (bads caught)",
    )
    order = np.argsort(score)
    sorted_score = score[order]
    bad_cdf = np.cumsum(y[order]) / max(y.sum(), 1)
    good_cdf = np.cumsum(1 - y[order]) / max((1 - y).sum(), 1)
    step = max(len(order) // 2000, 1)  # keep the figure small on big samples
    ks_fig = go.Figure(
        [
            go.Scatter(x=sorted_score[::step], y=bad_cdf[::step], name="bad", mode="lines"),
            go.Scatter(x=sorted_score[::step], y=good_cdf[::step], name="good", mode="lines"),
        ]
    )
    ks_fig.update_layout(
        title=f"KS {evaluation['ks']:.4f}", xaxis_title="score", yaxis_title="cumulative share"
    )
    dist = go.Figure(
        [
            go.Histogram(x=score[y == 0], name="good", opacity=0.6, histnorm="probability"),
            go.Histogram(x=score[y == 1], name="bad", opacity=0.6, histnorm="probability"),
        ]
    )
    dist.update_layout(
        title="Score distribution by outcome",
        barmode="overlay",
        xaxis_title="score",
        yaxis_title="share",
    )
    cal = evaluation["calibration"]
    top = max(max(r["pd_mean"] for r in cal), max(r["bad_rate"] for r in cal))
    calibration = go.Figure(
        [
            go.Scatter(
                x=[r["pd_mean"] for r in cal],
                y=[r["bad_rate"] for r in cal],
                name="deciles",
                mode="lines+markers",
            ),
            go.Scatter(x=[0, top], y=[0, top], name="perfect", mode="lines", line={"dash": "dash"}),
        ]
    )
    calibration.update_layout(
        title=f"Calibration (Brier {evaluation['brier']:.4f})",
        xaxis_title="predicted PD",
        yaxis_title="observed bad rate",
    )
    return {"roc": roc, "ks": ks_fig, "score_distribution": dist, "calibration": calibration}


def _table_html(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    head = "".join(f"<th>{escape(str(k))}</th>" for k in rows[0])
    body = "".join(
        "<tr>"
        + "".join(
            f"<td>{v:.4f}</td>"
            if isinstance(v, float)
            else f"<td>{'' if v is None else escape(str(v))}</td>"
            for v in r.values()
        )
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _scorecard_section(loaded: LoadedModel | None) -> str:
    table = getattr(loaded.model, "table", None) if loaded is not None else None
    if table is None:
        return ""
    return "<h2>Scorecard</h2>" + _table_html(table())


def _mapping_html(title: str, mapping: dict[str, Any] | None, value: str) -> str:
    if not mapping:
        return ""
    return f"<h2>{title}</h2>" + _table_html([{"feature": k, value: v} for k, v in mapping.items()])


def _validation_sections(summary: dict[str, Any]) -> str:
    hl = summary["hosmer_lemeshow"]
    parts = [
        "<h2>Master scale and cut-off trade-offs (safest band first)</h2>",
        _table_html(summary["score_bands"]),
        f"<h2>Hosmer-Lemeshow</h2><p>statistic {hl['statistic']:.2f} on {hl['df']} degrees "
        f"of freedom, p = {hl['p_value']:.4f}: "
        f"{'calibrated' if hl['passed'] else 'predicted PDs differ from observed bad rates'}"
        "</p>",
        _mapping_html(
            "Information value per characteristic (this sample)",
            summary.get("information_value"),
            "iv",
        ),
        _mapping_html("PSI per feature vs training", summary.get("feature_psi_vs_training"), "psi"),
        _mapping_html(
            "GBM feature importance (total gain)", summary.get("feature_importance_gain"), "gain"
        ),
    ]
    comparison = summary.get("comparison")
    if comparison:
        parts.append("<h2>Champion vs challenger (DeLong)</h2>" + _table_html([comparison]))
    groups = summary.get("groups")
    if groups:
        for column, rows in groups["tables"].items():
            parts.append(
                f"<h2>By {escape(column)} at cut-off {groups['cutoff']:g}</h2>" + _table_html(rows)
            )
    if summary.get("model_warnings"):
        parts.append(
            "<h2>Training warnings</h2><ul>"
            + "".join(f"<li>{escape(w)}</li>" for w in summary["model_warnings"])
            + "</ul>"
        )
    return "".join(parts)


def write_report(evaluation: dict[str, Any], html_path: Path) -> Path:
    """Write the HTML report and `<name>.json` beside it; return the JSON path."""
    figs = figures(evaluation)
    summary = public(evaluation)
    parts = []
    for i, fig in enumerate(figs.values()):
        parts.append(fig.to_html(full_html=False, include_plotlyjs=(i == 0)))
    keys = ("auc", "auc_ci95", "ks", "ks_ci95", "gini", "brier", "n", "bad_rate", "psi_vs_training")
    head = "".join(
        f"<tr><th>{k}</th><td>{summary[k]:.4f}</td></tr>"
        if isinstance(summary[k], float)
        else f"<tr><th>{k}</th><td>{summary[k]}</td></tr>"
        for k in keys
        if k in summary
    )
    html = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>Risk model report: {summary['model_id']}</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}</style></head><body>"
        f"<h1>Model {summary['model_id']}</h1><table>{head}</table>"
        + "".join(parts)
        + "<h2>Gains and lift by decile (riskiest first)</h2>"
        + _table_html(summary["gains"])
        + "<h2>Calibration by PD decile</h2>"
        + _table_html(summary["calibration"])
        + _validation_sections(summary)
        + _scorecard_section(evaluation.get("_model"))
        + "</body></html>"
    )
    html_path = Path(html_path)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(html, encoding="utf-8")
    json_path = html_path.with_suffix(".json")
    payload = {**summary, "figures": {k: json.loads(f.to_json()) for k, f in figs.items()}}
    json_path.write_text(json.dumps(payload), encoding="utf-8")
    return json_path
