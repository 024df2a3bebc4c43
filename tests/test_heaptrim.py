"""agent/heaptrim.py: malloc_trim after work, at most once per interval."""

from pagetide.agent.heaptrim import HeapTrim


def test_trims_at_most_once_per_interval():
    now = [100.0]
    trim = HeapTrim(interval=1.0, clock=lambda: now[0])
    assert trim.available                      # glibc on these machines
    assert trim.after_work() and not trim.after_work()
    now[0] += 0.5
    assert not trim.after_work()
    now[0] += 0.6
    assert trim.after_work() and trim.trims == 2


def test_after_work_calls_the_c_librarys_malloc_trim_with_zero_padding():
    calls = []
    trim = HeapTrim(interval=0.0)
    real = trim._trim
    trim._trim = lambda pad: calls.append(pad) or real(pad)
    assert trim.after_work() and calls == [0]
