"""End-to-end tests against the real test issuer and headless Chromium."""
