"""Webhooks: events written to an outbox in the caller's transaction, delivered signed by a
worker with retries and exponential backoff, dead-lettered after a limit, and replayable.

See docs/webhooks.md for what a shop receives and how it verifies a signature.
"""
