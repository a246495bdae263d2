"""Login diagnostics: the event catalogue, redaction, formatters and the durable log file.

Everything that logs goes through :mod:`codex_login.diagnostics.events`; nothing else in the package
touches logging handlers or formatters. This package imports none of the sign-in flows.
"""
