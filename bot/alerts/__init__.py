"""Bootbank-loss detection: log rules, syslog receiver, offline log scan (and, later, the alert engine)."""
