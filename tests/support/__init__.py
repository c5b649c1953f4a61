"""Helpers shared by tests: small loopback servers for fault injection."""
