"""Refusals of the webhooks area, each with a stable code."""

from __future__ import annotations

from fenqi.errors import FenqiError


class WebhookError(FenqiError):
    code = "webhook_error"
    http_status = 422


class InvalidEvent(WebhookError):
    """An event that cannot be enqueued (bad type, merchant id, or data)."""

    code = "invalid_webhook_event"
    http_status = 422


class EventNotFound(WebhookError):
    code = "not_found"
    legacy_code = "webhook_event_not_found"  # before API version 2026-12-03
    http_status = 404


class ReplayConflict(WebhookError):
    """A replay of an event that still has a delivery pending or in flight."""

    code = "webhook_replay_conflict"
    http_status = 409


class InvalidEndpoint(WebhookError):
    code = "invalid_webhook_endpoint"
    http_status = 422
