"""The WebSocket signalling endpoint and its protocol (docs/protocol.md)."""
