"""The long-lived ``git cat-file --batch`` reader: every object read without a new spawn.

A store of 10,000 procedures reads many objects per command; one process per read would
cost more than the reads. Requests are pipelined: one write of many names, then the
answers read back in order.
"""

from __future__ import annotations

import subprocess
import threading

from proctor.core.errors import StoreError
from proctor.store.git import end_process, git_env


class CatFile:
    """One long-lived ``git cat-file --batch`` process: every read without a new spawn."""

    def __init__(self, cwd: str) -> None:
        self._proc = subprocess.Popen(
            ["git", "cat-file", "--batch"],
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=git_env(),
        )
        self._lock = threading.Lock()

    def read(self, spec: str) -> tuple[str, str, bytes] | None:
        """(sha, type, content) of an object named by ``spec`` (sha or ``rev:path``)."""
        return self.read_many([spec])[0]

    def read_many(self, specs: list[str]) -> list[tuple[str, str, bytes] | None]:
        """Pipeline many requests: one write, then read the answers in order."""
        if not specs:
            return []
        assert self._proc.stdin is not None and self._proc.stdout is not None
        out: list[tuple[str, str, bytes] | None] = []
        with self._lock:
            payload = "".join(s + "\n" for s in specs).encode()
            writer: threading.Thread | None = None
            if len(payload) > 32768:
                # Write from a thread while reading answers here: git blocks on a full
                # stdout pipe while we would block on a full stdin pipe.
                writer = threading.Thread(target=self._write, args=(payload,), daemon=True)
                writer.start()
            else:
                self._write(payload)
            stdout = self._proc.stdout
            for _ in specs:
                header = stdout.readline()
                if not header:
                    raise StoreError("git cat-file stopped unexpectedly")
                parts = header.split()
                if len(parts) == 2 and parts[1] in (b"missing", b"ambiguous"):
                    out.append(None)
                    continue
                if len(parts) != 3:
                    out.append(None)
                    continue
                size = int(parts[2])
                body = stdout.read(size)
                stdout.read(1)
                out.append((parts[0].decode(), parts[1].decode(), body))
            if writer is not None:
                writer.join()
        return out

    def _write(self, payload: bytes) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.write(payload)
        self._proc.stdin.flush()

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                assert self._proc.stdin is not None
                self._proc.stdin.close()
            except OSError:
                pass
            end_process(self._proc)
        if self._proc.stdout is not None:
            self._proc.stdout.close()
