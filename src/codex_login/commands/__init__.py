"""One module per ``codex-login`` command. Each exposes ``run(args) -> int`` and imports what it needs."""
