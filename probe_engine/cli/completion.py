"""`probe-engine completion SHELL`: click's completion script for bash, zsh or fish."""

from __future__ import annotations

import click

SHELLS = ("bash", "zsh", "fish")
COMPLETE_VARIABLE = "_PROBE_ENGINE_COMPLETE"  # click's name for prog_name probe-engine


@click.command()
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    """Print the shell completion script for SHELL (click's own).

    \b
    bash: eval "$(probe-engine completion bash)"     (in ~/.bashrc)
    zsh:  eval "$(probe-engine completion zsh)"      (in ~/.zshrc, after compinit)
    fish: probe-engine completion fish > ~/.config/fish/completions/probe-engine.fish
    """
    from click.shell_completion import get_completion_class

    from . import cli

    completer = get_completion_class(shell)
    assert completer is not None, shell  # click ships all three
    click.echo(completer(cli, {}, "probe-engine", COMPLETE_VARIABLE).source())
