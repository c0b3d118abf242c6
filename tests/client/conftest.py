"""The live service fixture for the CLI tests."""

from tests.client.live import live_service

__all__ = ["live_service"]
