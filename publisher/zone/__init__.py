"""The zone engine: repository layout, Lua (sandbox, prelude, templates), BIND reader, validation,
evaluation, rendering. Pure: no network, no state."""
