"""One module per ``eldergate`` sub-command: ``configure(parser)`` and ``run(args) -> int``."""
