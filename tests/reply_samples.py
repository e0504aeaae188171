"""Replies every renderer's golden tests share; each test adds the cases its platform needs."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.messages import Actions, Button, Code, Confirm, Fields, Reply, Style, Table, Text

EXPIRES = datetime(2021, 8, 24, 12, 5, tzinfo=UTC)

COMMON: dict[str, Reply] = {
    "summary_only": Reply(summary="Nothing to report."),
    "text_styles": Reply(
        summary="styles",
        blocks=(
            Text("plain line\nsecond line"),
            Text("patched", Style.SUCCESS),
            Text("bootbank on USB", Style.WARNING),
            Text("host not found", Style.ERROR),
        ),
    ),
    "host_card": Reply(
        summary="esx-01: affected by PR 2777003",
        blocks=(
            Fields(
                (("Build", "17867351"), ("Release", "ESXi 7.0 Update 2a"), ("Boot", "usb (vmhba32, vmkusb)")),
                title="esx-01",
            ),
            Table(
                ("PR", "Verdict", "Reason"),
                (("2777003", "affected", "host boots from USB via vmkusb"), ("2761169", "fixed")),
                title="Fixes",
            ),
            Code("esxcli software vib list | grep vmkusb"),
        ),
    ),
    "confirm_shutdown": Reply(
        summary="Shut down esx-01?",
        blocks=(
            Text("esx-01 runs 3 VMs; they will be migrated first."),
            Confirm("k7q2", "Shut down esx-01", EXPIRES),
        ),
    ),
    "actions": Reply(
        summary="Alert 12 firing",
        blocks=(Actions((Button("Ack", "ack 12"), Button("Silence 1h", "silence esx-01 1h", danger=True))),),
    ),
}
