"""The `teamhub` command: one module per group of subcommands, each registering itself with `register(sub)`;
`commands.py` holds the core commands and builds the parser.

`main` is the console script entry point `teamhub.cli:main` (pyproject.toml). It imports the commands only
when called: `python -m teamhub.cli.ops` (scripts/) must not load the validator on its way in.
"""


def main(argv=None) -> int:
    from .commands import main as run

    return run(argv)
