"""``zone-publisher token``: create a webhook token and print the configuration line that accepts it
(``--read``: a Bearer token for the status page, ``/api/*`` and ``/metrics``, for ``[web] read_tokens``).

Only the hash goes into the configuration; the token itself is shown once, here, for the forge's
webhook URL.
"""

from __future__ import annotations

from publisher.service.tokens import config_line, generate_token, hash_token


def run(args) -> int:
    token = generate_token(max(16, getattr(args, "bytes", 32)))
    if getattr(args, "read", False):
        print("Read token for the status page, /api/* and /metrics (shown only now; keep it secret):")
        print(f"  Authorization: Bearer {token}")
        print("Add to the [web] table of the configuration:")
        print(f'  read_tokens = ["{hash_token(token)}"]')
        return 0
    print("Webhook URL path for the forge (shown only now; keep it secret):")
    print(f"  /notifications/{token}/push")
    print("Add to the [webhook] table of the configuration (several tokens may be listed during a rotation):")
    print(f"  {config_line(token)}")
    return 0
