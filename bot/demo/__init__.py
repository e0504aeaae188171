"""Demo mode's simulated fleet: host states, host operations, a Redfish BMC and events on demand.

Only ``bot.runtime.app`` wires this package (and only in demo mode); ``handlers.demo`` holds its chat
commands. Nothing else imports it (import-linter's forbidden contract in ``pyproject.toml``).
"""
