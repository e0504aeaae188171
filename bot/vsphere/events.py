"""``VCenterEvent``: the fields of a vCenter event that matter to esxbot, free of pyVmomi.

The event feed (``eventfeed``) fills these in on the worker thread; ``bot.alerts.vcenter_signals``
turns them into alert signals.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class VCenterEvent:
    """The fields of a vim.event.Event that matter here (the collector loop fills it in)."""

    key: int
    type: str  # class name: "GeneralHostErrorEvent", "EventEx", "HostConnectionLostEvent", …
    message: str
    host: str | None = None
    event_type_id: str | None = None  # EventEx/ExtendedEvent: "esx.problem.storage.apd.start", …
    created: datetime | None = None
