"""`zone-publisher apply --config FILE [--repository NAME] [--force] [--checksum SHA]`.

With ``[[repository]]`` tables, ``--repository`` names the repository to publish; zones another
repository owns (in the state database) are blocked, and the zones applied are claimed for it.

Exit 0 when every zone was applied or unchanged; 1 when the run has problems (the
``publisher.outcome`` answer the mail and ``/metrics`` give): a plan was unsafe (that zone
untouched), a zone had errors (its last good version kept), a provider failed, a zone had been
changed outside the publisher (repaired) or an ALIAS did not resolve, or the checksum no longer
matches; 2 when the configuration cannot be loaded.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from publisher.config import Config, ConfigError, load_config
from publisher.publish.orchestrator import publish


def select_repository(config: Config, name: str | None) -> Config | None:
    """The view of repository ``name`` of a several-repositories configuration (the configuration
    itself in the one-repository form), or None after printing why not."""
    names = ", ".join(view.name for view in config.repositories)
    if not config.repositories:
        if name:
            print(f"error: {config.display} has no [[repository]] tables: leave out --repository", file=sys.stderr)
            return None
        return config
    if not name:
        print(f"error: {config.display} configures several repositories; choose one with --repository NAME "
              f"({names})", file=sys.stderr)
        return None
    view = next((view for view in config.repositories if view.name == name), None)
    if view is None:
        print(f"error: {config.display} has no repository named {name!r}; it has: {names}", file=sys.stderr)
    return view


def load_for_command(path: str, repository: str | None = None) -> tuple[Config, Path] | None:
    """The configuration (of ``repository``, with several) and the local zone directory, or None
    after printing why not."""
    try:
        config = load_config(path)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return None
    for warning in config.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    config = select_repository(config, repository)
    if config is None:
        return None
    if config.source.path is None:
        print(f"error: {config.display}: [source] has a git url; the command line publishes a local directory: "
              "set [source] path (the service fetches remotes)", file=sys.stderr)
        return None
    return config, config.source.path


def run(args: argparse.Namespace) -> int:
    loaded = load_for_command(args.config, getattr(args, "repository", None))
    if loaded is None:
        return 2
    config, repo = loaded
    report = publish(config, repo, apply=True, force=args.force, checksum=args.checksum)
    sys.stdout.write(report.to_text())
    return report.exit_code
