"""Risk engine tables (decisions, transaction-risk state). Owned by the risk area."""

from __future__ import annotations
