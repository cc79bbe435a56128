"""sources/shutdown.py on real processes receiving real signals: unwind, stop flags, paced loops
and the exit watchdog. Each child prints "ready" once its handlers are in, then gets the signal."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from hftmem_tui.sources.shutdown import SignalHandlers, StopFlag, paced, stop_on_signals
from tests.conftest import ROOT


def _child(body: str) -> subprocess.Popen:
    code = "import signal, sys, threading, time\nfrom hftmem_tui.sources.shutdown import *\n" + textwrap.dedent(body)
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _signal_when_ready(proc: subprocess.Popen, sig: int | None, timeout: float = 20.0) -> tuple[int, str, str, float]:
    """Wait for the child's "ready" line, send ``sig``; return code, stdout, stderr and seconds to exit."""
    try:
        line = proc.stdout.readline()
        assert line == "ready\n", (line, proc.stderr.read() if proc.poll() is not None else "")
        sent = time.monotonic()
        if sig is not None:
            proc.send_signal(sig)
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, out, err, time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_unwind_on_hangup_runs_finally_and_exits_128_plus_signal(sig):
    proc = _child("""
        with unwind_on_hangup():
            try:
                print("ready", flush=True)
                time.sleep(60)
            finally:
                print("finally ran", flush=True)
    """)
    rc, out, err, took = _signal_when_ready(proc, sig)
    assert rc == 128 + sig and "finally ran" in out and "Traceback" not in err
    assert took < 10


def test_unwind_on_hangup_interrupts_a_paced_wait_and_restores_handlers():
    """The signal cuts an Event.wait short too (paced with a stop), and after the block the old
    handler is back: a second SIGTERM then kills with the default action."""
    proc = _child("""
        stop = threading.Event()
        try:
            with unwind_on_hangup():
                print("ready", flush=True)
                for _ in paced(30, stop):
                    pass
        except SystemExit as e:
            print(f"unwound {e.code} handler default {signal.getsignal(signal.SIGTERM) is signal.SIG_DFL}", flush=True)
    """)
    rc, out, err, took = _signal_when_ready(proc, signal.SIGTERM)
    assert rc == 0 and f"unwound {128 + signal.SIGTERM} handler default True" in out, err
    assert took < 10


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name)
def test_stop_on_signals_ends_a_paced_loop_with_the_reason(sig):
    proc = _child("""
        with stop_on_signals() as stop:
            for beat in paced(0.05, stop):
                if beat == 0:
                    print("ready", flush=True)
        print(stop.reason, signal.getsignal(signal.SIGINT) is signal.default_int_handler, flush=True)
    """)
    rc, out, err, took = _signal_when_ready(proc, sig)
    assert rc == 0, err
    assert out.strip() == f"stopped by {signal.Signals(sig).name} True"
    assert took < 10


def test_stop_on_signals_sets_a_given_plain_event():
    proc = _child("""
        ev = threading.Event()
        with stop_on_signals(ev) as stop:
            print("ready", flush=True)
            stop.wait(30)
        print("set" if ev.is_set() and stop is ev else "not set", flush=True)
    """)
    rc, out, err, _ = _signal_when_ready(proc, signal.SIGTERM)
    assert rc == 0 and out.strip() == "set", err


def test_exit_watchdog_runs_before_then_ends_with_the_code():
    proc = _child("""
        print("ready", flush=True)
        exit_watchdog(0.2, 77, before=lambda: print("hooks ran", flush=True))
        time.sleep(60)
    """)
    rc, out, _, took = _signal_when_ready(proc, None)
    assert rc == 77 and "hooks ran" in out
    assert took < 10


def test_exit_watchdog_exits_even_when_before_fails():
    proc = _child("""
        print("ready", flush=True)
        exit_watchdog(0.2, 78, before=lambda: 1 / 0)
        time.sleep(60)
    """)
    rc, _, _, took = _signal_when_ready(proc, None)
    assert rc == 78 and took < 10


def test_exit_watchdog_cancelled_lets_the_process_end_normally():
    proc = _child("""
        print("ready", flush=True)
        exit_watchdog(0.3, 79).cancel()
        time.sleep(0.6)
        print("normal end", flush=True)
    """)
    rc, out, _, _ = _signal_when_ready(proc, None)
    assert rc == 0 and "normal end" in out


def test_paced_beats_stay_on_the_grid_and_skip_missed_ones():
    interval = 0.05
    seen: list[tuple[int, float]] = []
    start = time.monotonic()
    for beat in paced(interval, until=start + 0.625):  # between beats 12 and 13
        seen.append((beat, time.monotonic()))
        if beat == 2:
            time.sleep(interval * 2.5)  # a slow beat: 3 and 4 are missed
    beats = [b for b, _ in seen]
    assert beats[:3] == [0, 1, 2] and beats == sorted(set(beats))
    assert beats[3] >= 5  # skipped, not burst
    for beat, t in seen:
        assert t >= start + beat * interval - 0.005  # never early: no drift ahead of the grid
    assert beats[-1] <= 12  # none past `until` (fewer when the machine is loaded: skipped, not burst)


def test_paced_ends_at_once_when_the_next_beat_is_past_until():
    start = time.monotonic()
    assert list(paced(30, until=start + 1)) == [0]
    assert time.monotonic() - start < 1


def test_paced_stop_cuts_the_wait_short():
    stop = StopFlag()
    threading.Timer(0.2, stop.stop).start()
    start = time.monotonic()
    assert list(paced(30, stop)) == [0]
    assert time.monotonic() - start < 10 and stop.reason == "stopped"


def test_paced_refuses_a_non_positive_interval():
    with pytest.raises(ValueError):
        next(paced(0))


def test_stop_flag_keeps_the_first_signal():
    flag = StopFlag()
    flag.stop(signal.SIGHUP)
    flag.stop(signal.SIGTERM)
    assert flag.is_set() and flag.reason == "stopped by SIGHUP"


def test_handlers_off_the_main_thread_install_nothing():
    before = signal.getsignal(signal.SIGTERM)
    seen = []

    def body():
        with SignalHandlers(lambda *_: None) as handlers, stop_on_signals() as stop:
            seen.append((handlers.installed, signal.getsignal(signal.SIGTERM), stop.is_set()))

    t = threading.Thread(target=body)
    t.start()
    t.join(10)
    assert seen == [((), before, False)]
