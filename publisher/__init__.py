"""zone-publisher: a self-hosted GitOps DNS publisher (LuaDNS-compatible zone repositories)."""

__version__ = "0.1.0"
