"""The `zone-publisher` command line: argument parsing only; each command lives in
``publisher/commands/<name>.py`` as ``run(args) -> exit status``."""

from __future__ import annotations

import argparse
import importlib
import os
import sys


REPOSITORY_HELP = "with [[repository]] tables in the configuration: the repository to use (required there)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zone-publisher",
        description="GitOps DNS publisher for LuaDNS-style zone repositories (Lua and BIND zones).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    lint = commands.add_parser("lint", help="evaluate and validate zones; exit 1 when any has an error")
    lint.add_argument("path", nargs="?", default=".", help="a zone repository (default .) or one zone file")
    lint.add_argument("--zone", help="zone origin when PATH is a single file (default: from the file name)")
    lint.add_argument("--server", choices=("bind", "knot"), default="bind",
                      help="whose verdict makes a finding an error: BIND 9.18 (default) or Knot")
    lint.add_argument("--format", choices=("text", "json", "github"), default="text")
    lint.add_argument("--verbose", "-v", action="store_true", help="also list skipped files and zones without findings")
    lint.add_argument("--cache", metavar="DIR", help="keep evaluated zones in DIR and evaluate again only those whose "
                      "files changed (as plan and apply do with [cache]); default: no cache, as suits a CI run")

    build = commands.add_parser("build", help="write DIR/<zone>.zone (canonical BIND text) for every zone without errors")
    build.add_argument("path", nargs="?", default=".", help="a zone repository (default .)")
    build.add_argument("--out", required=True, metavar="DIR")
    build.add_argument("--config", metavar="FILE", help="the SOA and apex NS of this configuration (default: the embedded default)")
    build.add_argument("--repository", metavar="NAME", help=REPOSITORY_HELP)

    for name, help_text in (("plan", "show what would change, per zone and provider"),
                            ("apply", "apply the plan to every provider")):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("--config", required=True, metavar="FILE")
        command.add_argument("--repository", metavar="NAME", help=REPOSITORY_HELP)
        if name == "plan":
            command.add_argument("--format", choices=("text", "json", "markdown"), default="text")
        else:
            command.add_argument("--force", action="store_true", help="allow unsafe changes (apex NS, thresholds, zone deletion)")
            command.add_argument("--checksum", metavar="SHA", help="apply only if the plan still has this checksum")

    import_zone = commands.add_parser("import", help="write a zone as a provider serves it, as a zone file")
    import_zone.add_argument("--config", required=True, metavar="FILE")
    import_zone.add_argument("--provider", required=True, metavar="NAME")
    import_zone.add_argument("--zone", required=True, metavar="ZONE")
    import_zone.add_argument("--format", choices=("lua", "bind"), default="lua")

    serve = commands.add_parser("serve", help="run the webhook service and background worker under gunicorn")
    serve.add_argument("--config", metavar="FILE", help="configuration file (default: the embedded default)")
    serve.add_argument("--listen", default="127.0.0.1:8053", metavar="HOST:PORT")
    serve.add_argument("--certificate", metavar="FILE",
                       help="serve HTTPS with this PEM certificate chain (with --key); else plain HTTP for a proxy")
    serve.add_argument("--key", metavar="FILE", help="the certificate's PEM private key")

    token = commands.add_parser("token", help="create a webhook token and print its configuration line")
    token.add_argument("--bytes", type=int, default=32, help=argparse.SUPPRESS)
    token.add_argument("--read", action="store_true",
                       help="a read token (Bearer) for the status page, /api and /metrics, for [web] read_tokens")

    db = commands.add_parser("db", help="the state database: create or migrate its tables (SQLite or PostgreSQL)")
    db.add_argument("action", choices=("upgrade",), help="upgrade: create missing tables and columns, keep every row")
    db.add_argument("--config", metavar="FILE", help="configuration file (default: the embedded default)")

    passwd = commands.add_parser("passwd", help="hash a password for a [web.users] login to the status page and API")
    passwd.add_argument("user")
    passwd.add_argument("--stdin", action="store_true", help="read the password from the first line of stdin")
    return parser


# Commands that run once and end the process.  Run from the command line (``argv`` None), they
# end it without the interpreter's teardown, which frees every record and module one by one: a
# seventh of a no-change plan of a 10,000-record zone (bench/README.md).
ONE_SHOT_COMMANDS = frozenset({"lint", "build", "plan", "apply", "import"})


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    module_name = "import_zone" if args.command == "import" else args.command
    command = importlib.import_module(f"publisher.commands.{module_name}")
    status = command.run(args)
    if argv is None and args.command in ONE_SHOT_COMMANDS:
        exit_without_teardown(status)
    return status


def exit_without_teardown(status: int) -> None:
    """End the process once everything it wrote is out (log handlers, stdout, stderr)."""
    logging = sys.modules.get("logging")
    if logging is not None:
        logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: what Python's own exit would report as 120
            status = status or 120
    os._exit(status)


if __name__ == "__main__":
    sys.exit(main())
