"""Publishing: the plan (diff, ordering, safety), SOA serials, ALIAS, state, the one orchestrator and
the providers."""
