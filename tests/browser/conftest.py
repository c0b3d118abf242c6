"""The live service fixture for the browser test."""

from tests.client.live import live_service

__all__ = ["live_service"]
