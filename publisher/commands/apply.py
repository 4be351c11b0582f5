"""`zone-publisher apply --config FILE [--force] [--checksum SHA]`.

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


def load_for_command(path: str) -> tuple[Config, Path] | None:
    """The configuration and the local zone directory, or None after printing why not."""
    try:
        config = load_config(path)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return None
    for warning in config.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if config.source.path is None:
        print(f"error: {config.display}: [source] has a git url; the command line publishes a local directory: "
              "set [source] path (the service fetches remotes)", file=sys.stderr)
        return None
    return config, config.source.path


def run(args: argparse.Namespace) -> int:
    loaded = load_for_command(args.config)
    if loaded is None:
        return 2
    config, repo = loaded
    report = publish(config, repo, apply=True, force=args.force, checksum=args.checksum)
    sys.stdout.write(report.to_text())
    return report.exit_code
