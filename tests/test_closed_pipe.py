"""A closed pipe ends any command quietly, as other Unix tools do: `treegrad ... | head` once printed
"internal error (BrokenPipeError)". Through a real pipe whose reader is gone before the command
writes, so the first write fails, every time."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],  # the group's own help, printed by rich before any command runs
        ["simplify", "--help"],  # a command's help, inside the error boundary
        ["datasets"],  # a rich table
        ["schema"],  # text written straight to standard output
    ],
)
def test_a_closed_pipe_ends_the_command_quietly(args: list[str], tmp_path: Path) -> None:
    read, write = os.pipe()
    os.close(read)  # the reader has gone (head has printed its lines and left)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "treegrad", *args], stdout=write, stderr=subprocess.PIPE, cwd=tmp_path, timeout=60
        )
    finally:
        os.close(write)
    assert done.stderr.decode() == ""
    assert done.returncode == 128 + 13  # as a shell reports a tool ended by SIGPIPE
