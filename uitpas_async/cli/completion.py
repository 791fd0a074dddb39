"""``uitpas-async completion SHELL``: print a tab-completion script for bash, zsh or tcsh.

The script is generated from the parser by shtab (the ``cli`` extra), so it knows
every command and option; nothing runs Python at tab time.
"""

from __future__ import annotations

import argparse

from uitpas_async.cli.args import global_options
from uitpas_async.cli.output import EXIT_OK
from uitpas_async.engine.errors import ConfigurationError

__all__ = ["SHELLS", "add_commands"]

SHELLS = ("bash", "zsh", "tcsh")


def _handler(parser: argparse.ArgumentParser) -> object:
    async def run(args: argparse.Namespace) -> int:
        try:
            import shtab
        except ImportError:
            raise ConfigurationError(
                "completion needs shtab: pip install 'uitpas-async[cli]'"
            ) from None
        print(shtab.complete(parser, shell=args.shell), end="")
        return EXIT_OK

    return run


def add_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    parser: argparse.ArgumentParser,
) -> None:
    """Add ``completion SHELL``, which completes everything ``parser`` knows."""
    completion = commands.add_parser(
        "completion",
        parents=[global_options()],
        help="print a shell completion script",
        description="Print a tab-completion script for the shell.",
        epilog="examples:\n"
        '  eval "$(uitpas-async completion bash)"             # in ~/.bashrc\n'
        "  uitpas-async completion zsh > ~/.zfunc/_uitpas-async  # zsh, with ~/.zfunc "
        "in fpath\n",
    )
    completion.add_argument("shell", choices=SHELLS, metavar="SHELL", help="bash, zsh or tcsh")
    completion.set_defaults(handler=_handler(parser))
