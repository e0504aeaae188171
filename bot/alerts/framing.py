"""RFC 6587 syslog-over-TCP framing: split a byte stream into messages, with a bounded buffer.

Both framings are accepted and decided per frame, as rsyslog does: a frame starting with a non-zero
digit run followed by a space is octet-counted (``LEN SP MSG``), anything else ends at LF. A frame
longer than ``max_line`` is skipped (its bytes are discarded as they arrive, never held) and counted,
so one connection never holds more than ``max_line`` plus one read of unframed bytes.
"""

from __future__ import annotations

_DIGITS = frozenset(b"0123456789")
_MAX_COUNT_DIGITS = 7  # "9999999 " is already far beyond any max_line


class Framer:
    __slots__ = ("_buf", "_skip", "_skip_line", "max_line", "oversize")

    def __init__(self, max_line: int) -> None:
        self.max_line = max_line
        self.oversize = 0  # frames skipped for being longer than max_line
        self._buf = bytearray()
        self._skip = 0  # bytes still to discard of an oversized octet-counted frame
        self._skip_line = False  # discarding an oversized newline-framed line up to its LF

    @property
    def buffered(self) -> int:
        """Bytes held for a frame that is not complete yet."""
        return len(self._buf)

    def reset(self) -> None:
        """Forget any partial frame (the connection is gone)."""
        self._buf.clear()
        self._skip = 0
        self._skip_line = False

    def feed(self, data: bytes) -> list[bytes]:
        """The complete frames in what has arrived so far (CR/LF stripped, empty ones left out)."""
        self._buf += data
        frames: list[bytes] = []
        buf, pos, end = self._buf, 0, len(self._buf)
        while pos < end:
            if self._skip:
                step = min(self._skip, end - pos)
                self._skip -= step
                pos += step
                continue
            if self._skip_line:
                nl = buf.find(b"\n", pos)
                if nl < 0:
                    pos = end
                    break
                self._skip_line = False
                pos = nl + 1
                continue
            if buf[pos] in _DIGITS and buf[pos] != 0x30:
                space = buf.find(b" ", pos, min(end, pos + _MAX_COUNT_DIGITS + 1))
                if space > pos and all(b in _DIGITS for b in buf[pos:space]):
                    length = int(buf[pos:space])
                    if length > self.max_line:
                        self.oversize += 1
                        self._skip = length
                        pos = space + 1
                        continue
                    if end - space - 1 < length:
                        break  # the rest of this frame is still on its way
                    self._keep(frames, buf[space + 1 : space + 1 + length])
                    pos = space + 1 + length
                    continue
                if space < 0 and end - pos <= _MAX_COUNT_DIGITS and buf.find(b"\n", pos) < 0:
                    break  # maybe an octet count whose space is still on its way
            nl = buf.find(b"\n", pos)
            if nl < 0:
                if end - pos > self.max_line:
                    self.oversize += 1
                    self._skip_line = True
                    pos = end
                break
            self._keep(frames, buf[pos:nl])
            pos = nl + 1
        del buf[:pos]
        return frames

    @staticmethod
    def _keep(frames: list[bytes], frame: bytearray) -> None:
        stripped = bytes(frame).rstrip(b"\r\n")
        if stripped:
            frames.append(stripped)
