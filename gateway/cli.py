"""The ``eldergate`` command line.

Each sub-command lives in its own module under :mod:`gateway.commands` exposing
``configure(parser)`` and ``run(args) -> int``; this file only dispatches, importing a command's
module when it is used so that ``eldergate decode`` never pays for numpy or aiomqtt it does
not need.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("gateway.commands.run", "run the gateway from a config file"),
    "demo": ("gateway.commands.demo", "simulated home + gateway + reference platform"),
    "replay": ("gateway.commands.replay", "replay a recording through detection and alerts"),
    "check-config": ("gateway.commands.check_config", "validate a config file"),
    "platform": ("gateway.commands.platform", "run the reference community platform alone"),
    "decode": ("gateway.commands.decode", "decode raw device messages (JSON Lines on stdin)"),
    "evaluate": ("gateway.commands.evaluate", "measure a detector on recorded data"),
    "import": ("gateway.commands.import_data", "convert public datasets into recordings"),
    "simulate": ("gateway.commands.simulate", "run simulated devices against a broker"),
}


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = argparse.ArgumentParser(prog="eldergate", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    subparsers = {}
    for name, (_module, help_text) in COMMANDS.items():
        subparsers[name] = sub.add_parser(name, help=help_text)
    return parser, subparsers


def main(argv: list[str] | None = None) -> int:
    parser, subparsers = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    # Configure only the chosen command's parser (imports just that module).
    chosen = next((a for a in argv if a in COMMANDS), None)
    if chosen is not None:
        importlib.import_module(COMMANDS[chosen][0]).configure(subparsers[chosen])
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        return int(module.run(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
