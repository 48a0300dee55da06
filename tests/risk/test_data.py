from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fenqi.risk.data import (
    FeatureKind,
    RecordEncoder,
    encode_frame,
    fingerprint_frame,
    infer_features,
    resolve_target,
    target_vector,
)
from fenqi.risk.errors import BadDataError, FeatureMismatchError
from support.frames import frame_records


def test_zero_one_target_has_one_as_bad() -> None:
    frame = pd.DataFrame({"y": [0, 1, 1, 0]})
    target = resolve_target(frame, "y")
    assert target.bad_label == "1"
    assert target_vector(frame, target).tolist() == [0, 1, 1, 0]


def test_good_bad_labels_are_inferred_and_overridable() -> None:
    frame = pd.DataFrame({"y": ["good", "bad", "good"]})
    assert resolve_target(frame, "y").bad_label == "bad"
    target = resolve_target(frame, "y", bad_value="good")
    assert target_vector(frame, target).tolist() == [1, 0, 1]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([0, 1, 2], "exactly two values"),
        (["x", "z", "x"], "pass --bad-value"),
        ([1, 2, 2], "pass --bad-value"),  # 1/2 codings differ between sources: ask
        ([0.0, None, 1.0], "missing values"),
    ],
)
def test_unusable_targets_are_refused(values: list[object], message: str) -> None:
    with pytest.raises(BadDataError, match=message):
        resolve_target(pd.DataFrame({"y": values}), "y")


def test_missing_target_column_names_the_columns() -> None:
    with pytest.raises(BadDataError, match="'nope' not found; columns are: a"):
        resolve_target(pd.DataFrame({"a": [1]}), "nope")


def test_features_are_typed_and_identifiers_dropped() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "id": rng.permutation(1000)[:60] + 5,
            "amount": [1.5, 2.0, None] * 20,
            "city": ["a", "b", "a", None] * 15,
            "constant": [7] * 60,
            "count": [1, 2, 3] * 20,
        }
    )
    specs = infer_features(frame)
    assert [(s.name, s.kind) for s in specs] == [
        ("amount", FeatureKind.NUMERIC),
        ("city", FeatureKind.CATEGORICAL),
        ("count", FeatureKind.NUMERIC),
    ]
    assert specs[1].categories == ("a", "b")


def test_numeric_column_with_text_is_refused_naming_row() -> None:
    frame = pd.DataFrame({"amount": [str(i) for i in range(30)] + ["oops"]})
    with pytest.raises(BadDataError, match=r"'amount' is numeric .* 'oops' at row 32"):
        infer_features(frame)


def test_record_encoder_matches_frame_encoding() -> None:
    frame = pd.DataFrame({"amount": [1.5, None, 3.0], "city": ["a", "zzz", None], "n": [1, 2, 3]})
    specs = infer_features(pd.DataFrame({"amount": [1.0, 2.0], "city": ["a", "b"], "n": [5, 9]}))
    matrix = encode_frame(frame, specs)
    encoder = RecordEncoder(specs)
    for i, record in enumerate(frame_records(frame.replace({np.nan: None}))):
        np.testing.assert_array_equal(encoder.encode(record), matrix[i])
    assert np.isnan(matrix[1, 1]) and np.isnan(matrix[2, 1])  # unseen and missing category


def test_mismatched_inputs_name_the_columns() -> None:
    specs = infer_features(pd.DataFrame({"amount": [1.0, 2.0], "city": ["a", "b"]}))
    with pytest.raises(FeatureMismatchError, match="lacks model features: city"):
        encode_frame(pd.DataFrame({"amount": [1.0]}), specs)
    with pytest.raises(FeatureMismatchError, match="non-numeric values: amount"):
        encode_frame(pd.DataFrame({"amount": ["x"], "city": ["a"]}), specs)
    with pytest.raises(FeatureMismatchError, match="non-numeric values: amount"):
        RecordEncoder(specs).encode({"amount": "ten", "city": "a"})


def test_fingerprint_changes_with_one_value() -> None:
    a = pd.DataFrame({"x": [1, 2, 3]})
    b = pd.DataFrame({"x": [1, 2, 4]})
    assert fingerprint_frame(a) == fingerprint_frame(a.copy())
    assert fingerprint_frame(a) != fingerprint_frame(b)
