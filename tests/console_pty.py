"""``esxbot run`` on a pseudo-terminal, typed into as a person types: send a line, wait for text.

Standard library only (``pty``, ``select``): the bot sees a real terminal on stdin and stdout, and
the test sees exactly what a person would, in order, with notifications between the replies.
"""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path


class ConsoleTimeout(AssertionError):
    pass


class Console:
    def __init__(self, argv: Sequence[str], *, cwd: Path, env: dict[str, str] | None = None) -> None:
        primary, secondary = pty.openpty()
        self._fd = primary
        self.proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=env,
            stdin=secondary,
            stdout=secondary,
            stderr=secondary,
            start_new_session=True,
        )
        os.close(secondary)
        self.output = ""  # everything seen, \r\n turned into \n
        self._pos = 0  # where the next expect starts looking

    def _read(self, limit: float) -> None:
        ready, _, _ = select.select([self._fd], [], [], limit)
        if not ready:
            return
        try:
            data = os.read(self._fd, 65536)
        except OSError:  # EIO: the bot exited and the terminal closed
            data = b""
        if not data:
            time.sleep(limit)
            return
        self.output += data.decode("utf-8", "replace").replace("\r\n", "\n")

    def expect(self, pattern: str, timeout: float = 20.0) -> re.Match[str]:
        """The first match of ``pattern`` after the last expected text; fails with what was seen."""
        regex = re.compile(pattern, re.MULTILINE)
        deadline = time.monotonic() + timeout
        while True:
            found = regex.search(self.output, self._pos)
            if found:
                self._pos = found.end()
                return found
            left = deadline - time.monotonic()
            if left <= 0:
                raise ConsoleTimeout(
                    f"no {pattern!r} within {timeout:g} s; last output:\n{self.output[-3000:]}"
                )
            self._read(min(left, 0.2))

    def mark(self) -> int:
        """Where the next ``expect`` starts; ``rewind`` to it to wait for things in any order."""
        return self._pos

    def rewind(self, mark: int) -> None:
        self._pos = mark

    def send(self, line: str) -> None:
        os.write(self._fd, line.encode() + b"\n")

    def close(self, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.send("quit")
            deadline = time.monotonic() + timeout
            while self.proc.poll() is None and time.monotonic() < deadline:
                self._read(0.1)
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout)
        os.close(self._fd)
        return self.proc.returncode
