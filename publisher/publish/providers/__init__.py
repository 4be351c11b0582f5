"""DNS providers: small plug-ins behind one interface (see ``base.py``).

Each provider module declares the options of its ``[[provider]]`` table (``OPTIONS``, checked by
``publisher.config``); ``create_provider`` builds one from its table.  There is no global registry
to patch: tests construct providers directly.
"""

from __future__ import annotations

import importlib
from typing import Any

from publisher.publish.providers.base import (Capabilities, ConcurrentChangeError, Option, OptionSchema, Provider,
                                              ProviderError, Snapshot)

__all__ = ["Capabilities", "ConcurrentChangeError", "Option", "OptionSchema", "Provider", "ProviderError", "Snapshot",
           "PROVIDER_TYPES", "create_provider", "option_schema"]

# type -> the module that implements it and declares its OPTIONS (imported only when used).
_MODULES = {
    "rfc2136": "publisher.publish.providers.rfc2136",
    "powerdns": "publisher.publish.providers.powerdns",
    "zonefile": "publisher.publish.providers.zonefile",
    "octodns": "publisher.publish.providers.octodns",
}
PROVIDER_TYPES = tuple(_MODULES)


def option_schema(kind: str) -> OptionSchema:
    """The options a provider type takes; KeyError for an unknown type."""
    return importlib.import_module(_MODULES[kind]).OPTIONS


def create_provider(provider_config: Any, config: Any = None) -> Provider:
    """The provider described by ``provider_config`` (a ``publisher.config.ProviderConfig``).

    ``options`` holds the type's keys with secrets already resolved.  Raises ProviderError for a
    bad table (the message names the provider, never a secret).
    """
    name, kind, options = provider_config.name, provider_config.type, dict(provider_config.options)

    def need(key: str) -> Any:
        if options.get(key) in (None, ""):
            raise ProviderError(f"provider {name!r} ({kind}): missing {key!r}")
        return options[key]

    if kind == "rfc2136":
        from publisher.publish.providers.rfc2136 import RFC2136Provider
        from publisher.publish.providers.tsig import TsigError, make_key, read_keyfile

        try:
            if options.get("tsig_keyfile"):
                key = read_keyfile(options["tsig_keyfile"], options.get("tsig_name"))
            elif options.get("tsig_secret"):
                key = make_key(need("tsig_name"), options.get("tsig_algorithm", "hmac-sha256"), options["tsig_secret"])
            else:
                key = None
        except TsigError as error:
            raise ProviderError(f"provider {name!r} (rfc2136): {error}") from None
        return RFC2136Provider(name, str(need("server")), int(options.get("port", 53)), key,
                               timeout=float(options.get("timeout", 10.0)),
                               max_message_size=int(options.get("max_message_size", 65535)))
    if kind == "powerdns":
        from publisher.publish.providers.powerdns import PowerDNSProvider

        return PowerDNSProvider(name, str(need("api_url")), str(need("api_key")),
                                server_id=str(options.get("server_id", "localhost")),
                                timeout=float(options.get("timeout", 30.0)),
                                kind=str(options.get("kind", "Native")),
                                nameservers=tuple(options.get("nameservers", ())))
    if kind == "zonefile":
        from publisher.publish.providers.zonefile import ZoneFileProvider

        return ZoneFileProvider(name, need("directory"), reload_command=options.get("reload_command"),
                                check_command=options.get("check_command"),
                                named_conf=options.get("named_conf"),
                                reconfig_command=options.get("reconfig_command"),
                                reload_all_command=options.get("reload_all_command"),
                                timeout=float(options.get("timeout", 60.0)))
    if kind == "octodns":
        from publisher.publish.providers.octodns import OctoDNSProvider

        return OctoDNSProvider.from_options(name, options)
    raise ProviderError(f"provider {name!r}: unknown type {kind!r} ({', '.join(PROVIDER_TYPES)})")
