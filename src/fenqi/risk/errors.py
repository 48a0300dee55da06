"""The risk area's exception family. Each refusal carries a stable machine code.

User errors (bad data, a broken flow, an input that does not match the model) are expected and
get a message that names the column, field or node; an `AssertionError` is a bug.
"""

from __future__ import annotations

from fenqi.errors import FenqiError


class RiskError(FenqiError):
    code = "risk.error"


class BadDataError(RiskError):
    """A data file or frame cannot be used: empty, missing target, non-binary target, bad types."""

    code = "risk.bad_data"


class FeatureMismatchError(RiskError):
    """The input's columns do not match the features the model was trained on."""

    code = "risk.feature_mismatch"


class ArtifactError(RiskError):
    """A model artifact is missing, incomplete or of an unknown format version."""

    code = "risk.bad_artifact"


class FlowError(RiskError):
    """A decision flow (JDM graph) is malformed or does not produce the outputs fenqi needs."""

    code = "risk.bad_flow"
