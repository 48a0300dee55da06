"""Risk engine: scorecards, gradient boosting, decision flows, transaction risk, registry."""
