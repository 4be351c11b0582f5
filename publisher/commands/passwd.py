"""``zone-publisher passwd USER``: hash a password for ``[web.users]``, the login of the status page,
``/api/*`` and ``/metrics``.

The password is read from the terminal (twice) or, with ``--stdin``, from the first line of standard
input, never from the command line (it would be in the shell history and ``ps``).  Only the hash,
made with werkzeug's scrypt, goes into the configuration.
"""

from __future__ import annotations

import getpass
import sys

from werkzeug.security import generate_password_hash

MIN_LENGTH = 12


def password_hash(password: str) -> str:
    """The configuration form of ``password``: ``scrypt:<n>:<r>:<p>$<salt>$<hex>``."""
    return generate_password_hash(password, method="scrypt")


def run(args) -> int:
    user = args.user
    if not user or any(c in user for c in ' :="\n'):
        print("zone-publisher passwd: the user name must be non-empty, without spaces, ':', '=' or quotes",
              file=sys.stderr)
        return 2
    if args.stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"Password for {user}: ")
        if getpass.getpass("Again: ") != password:
            print("zone-publisher passwd: the passwords differ", file=sys.stderr)
            return 1
    if len(password) < MIN_LENGTH:
        print(f"zone-publisher passwd: use at least {MIN_LENGTH} characters", file=sys.stderr)
        return 1
    print("Add to the [web.users] table of the configuration:")
    print(f'  {user} = "{password_hash(password)}"')
    return 0
