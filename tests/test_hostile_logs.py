"""``logs scan`` against hostile files: bounded lines and bytes, no devices, partial ``.gz`` results kept."""

from __future__ import annotations

import gzip
import tracemalloc
from pathlib import Path

from bot.alerts.log_scan import scan_files

LOSS = (
    "2024-03-02T10:15:04.000Z esx-usb-01 hostd[2099480]: Event 412 : Issue detected on esx-usb-01 in "
    "ha-datacenter: Bootbank cannot be found at path '/bootbank'\n"
)


def test_one_endless_line_in_a_small_gz_is_read_in_bounded_memory(tmp_path: Path) -> None:
    bomb = tmp_path / "vmkernel.log.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as out:
        out.write(LOSS.encode())
        for _ in range(24):
            out.write(b"A" * (1024 * 1024))  # 24 MiB without a newline
        out.write(b"\n" + LOSS.encode())
    assert bomb.stat().st_size < 200_000
    tracemalloc.start()
    try:
        result = scan_files([bomb])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024, peak
    assert result.errors == ()
    assert [s.kind.value for s in result.signals] == ["loss", "loss"]
    assert result.lines == 3


def test_decompression_stops_at_the_byte_bound(tmp_path: Path) -> None:
    bomb = tmp_path / "zeros.log.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as out:
        out.write(LOSS.encode())
        for _ in range(32):
            out.write((b"x" * 1023 + b"\n") * 1024)
    result = scan_files([bomb], max_bytes=4 * 1024 * 1024)
    assert len(result.signals) == 1
    [error] = result.errors
    assert "more than 4194304 bytes" in error and "1 signal(s) before that are kept" in error


def test_signals_before_a_corrupt_part_of_a_gz_are_kept(tmp_path: Path) -> None:
    good = gzip.compress(LOSS.encode() * 3 + b"filler line\n" * 200_000)
    broken = tmp_path / "hostd.log.gz"
    cut = len(good) // 2
    broken.write_bytes(good[:cut] + bytes(b ^ 0x5A for b in good[cut : cut + 64]) + good[cut + 64 :])
    result = scan_files([broken])
    assert len(result.signals) == 3
    [error] = result.errors
    assert (
        error.startswith(f"{broken}: unreadable after line ") and "3 signal(s) before that are kept" in error
    )


def test_devices_are_not_read() -> None:
    result = scan_files([Path("/dev/zero")])
    assert result.errors == ("/dev/zero: cannot read: not a regular file: /dev/zero",)
    assert result.lines == 0
