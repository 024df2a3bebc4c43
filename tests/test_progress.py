"""Progress display (harness/progress.py): a bar redrawn in place on a terminal, one plain line every N steps in
a log, never a carriage return there."""

import os
import io

import pytest

from pagetide.harness.progress import LOG_LINES, Progress


def run(progress: Progress, steps: int) -> None:
    for i in range(1, steps + 1):
        progress(i, f"round {i} ms")


def test_redirected_to_a_pipe_it_writes_about_fifteen_plain_lines_and_no_carriage_return():
    r, w = os.pipe()
    with os.fdopen(w, "w") as stream:
        run(Progress(60, label="pagetide sim", stream=stream), 60)
    with os.fdopen(r) as f:
        text = f.read()
    lines = text.splitlines()
    assert "\r" not in text and text.endswith("\n")
    assert len(lines) == LOG_LINES == 15        # every 4th of 60 rounds
    assert lines[0] == "pagetide sim: 4/60 rounds (6%), round 4 ms"
    assert lines[-1] == "pagetide sim: 60/60 rounds (100%), round 60 ms"


@pytest.mark.parametrize("total, expected", [(1, 1), (7, 7), (16, 8), (1000, 15)])
def test_a_log_gets_at_most_about_fifteen_lines_whatever_the_run_length_and_always_the_last_step(total, expected):
    out = io.StringIO()
    run(Progress(total, label="x", stream=out), total)
    lines = out.getvalue().splitlines()
    assert len(lines) == expected and lines[-1].startswith(f"x: {total}/{total} rounds (100%)")


def test_every_sets_the_steps_between_log_lines():
    out = io.StringIO()
    run(Progress(10, label="x", what="runs", stream=out, every=5), 10)
    assert out.getvalue() == "x: 5/10 runs (50%), round 5 ms\nx: 10/10 runs (100%), round 10 ms\n"


def read_all(fd: int) -> str:
    """Everything written to a pty whose other end is closed: one read may return a part (CI saw only the first
    frame), so read until end of file, which Linux reports as EIO on a pty master."""
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 1 << 16)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode()


def test_on_a_terminal_it_redraws_one_line_in_place_and_ends_it_after_the_last_step():
    master, slave = os.openpty()
    try:
        with os.fdopen(slave, "w") as stream:
            run(Progress(4, label="pagetide sim", stream=stream), 4)
            print("done", file=stream)
        text = read_all(master)
    finally:
        os.close(master)
    # the terminal turns "\n" into "\r\n" (onlcr); every step is a frame that starts with "\r"
    frames = text.replace("\r\n", "\n").split("\r")[1:]
    assert len(frames) == 4
    assert frames[0] == "[" + "#" * 7 + "." * 23 + "] 1/4 rounds round 1 ms"
    assert frames[-1] == "[" + "#" * 30 + "] 4/4 rounds round 4 ms\ndone\n"


def test_a_shorter_frame_blanks_what_the_longer_one_before_it_left_on_the_line():
    tty = FakeTerminal()
    p = Progress(3, label="x", stream=tty)
    p(1, "a long message")
    p(2, "short")
    first, second = tty.getvalue().split("\r")[1:]
    assert len(second) == len(first) and second.rstrip().endswith("2/3 rounds short")


def test_end_closes_a_drawn_line_once_and_writes_nothing_in_a_log():
    tty = FakeTerminal()
    p = Progress(10, label="x", stream=tty)
    p(3)
    p.end()
    p.end()
    assert tty.getvalue().count("\n") == 1 and tty.getvalue().endswith("\n")
    log = io.StringIO()
    q = Progress(100, label="x", stream=log)   # a line every 7 steps
    q(3)
    q.end()
    assert log.getvalue() == ""


def test_bad_totals_and_intervals_are_refused():
    with pytest.raises(ValueError, match="total"):
        Progress(0, label="x")
    with pytest.raises(ValueError, match="every"):
        Progress(5, label="x", every=0)


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True
