"""Shared helpers for the end-to-end tests: the test issuer, Chromium and the browser agent."""
