"""Alerting: signals from syslog, vCenter and log scans → alerts with paging, escalation and silences.

- ``patterns``: log rules as data (YAML); ``logline``/``framing``: syslog line shapes and framing;
  ``syslog``: the UDP/TCP/TLS receiver; ``signals``: lines → log signals; ``log_scan``: saved logs.
- ``vcenter_signals``: vCenter events and host-state changes → signals; ``vcenter``: the watch loop.
- ``intake``: signals → engine input and its settings; ``engine``: one alert per (host, kind), its
  lifecycle (pending, firing, acknowledged, resolved); ``groups``: alerts grouped by labels page,
  escalate, are acknowledged and resolve together; ``labels``: alert labels and matchers;
  ``muting``: silences and ``inhibition`` rules (as data) deciding what is held back.
- ``page``: the group's page and notes; ``oncall``: rotations and escalation chains; ``pager``:
  PagerDuty and webhooks.
"""
