"""`hftmem record` and `hftmem export` against the real engine, judged by /proc and prometheus_client's parser."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time

import pytest

from hftmem_tui.feeds.recording import Recording
from hftmem_tui.feeds.recording_writer import (
    RecordingWriter,
    SampleEncoder,
    encode_line,
    make_header,
)
from hftmem_tui.feeds.sampler import LiveSampler
from hftmem_tui.model.trend import fit_leak
from tests.conftest import proc_status, run_cli, stop_process, vm_rss_kib
from tests.helpers import (
    children,
    free_port,
    gone,
    metric_value,
    scrape_metrics,
    spawn_cli,
    wait_lines,
)


def _assert_untouched(pid: int) -> None:
    st = proc_status(pid)
    assert st["TracerPid"] == "0" and not st["State"].startswith("T"), st


@pytest.mark.slow
def test_record_leak_survives_sigkill(engine, tmp_path):
    """SIGKILL the recorder: header + whole samples read back, RSS rising, no perf left behind."""
    pid = engine("--scenario", "leak")
    out = tmp_path / "leak.jsonl"
    rec = spawn_cli("record", str(pid), "--out", str(out), "--interval", "0.2", "--smaps-every", "5")
    try:
        wait_lines(out, 1 + 15)
        perf_children = children(rec.pid)
        rec.send_signal(signal.SIGKILL)
        rec.wait(timeout=5)
    finally:
        if rec.poll() is None:
            rec.kill()
            rec.wait()
    deadline = time.monotonic() + 5
    while perf_children and not all(gone(c) for c in perf_children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert perf_children and all(gone(c) for c in perf_children), "perf outlived the killed recorder"
    _assert_untouched(pid)

    r = Recording.open(str(out))
    assert r.header["pid"] == pid and r.header["comm"] == "hftmem-engine" and r.header["engine"] is True
    samples = list(r.samples())
    raw_lines = out.read_bytes().split(b"\n")
    whole = raw_lines[1:-1]  # split leaves the (possibly partial) tail last
    assert len(samples) == len(whole) >= 15  # at most the line in flight is lost
    assert r.damage is None or r.damage.line == len(raw_lines)
    rss = [(s.time, s.status.vm_rss_kb * 1024) for s in samples]
    assert rss[-1][1] - rss[0][1] > 2 * 1024 * 1024  # ~2 MiB/s for >= 3 s
    verdict = fit_leak(rss, warmup_s=0, min_span_s=2.0)
    assert verdict.verdict == "growing", verdict
    assert samples[-1].engine.leaked_bytes > samples[0].engine.leaked_bytes
    assert samples[0].mappings and any(s.perf for s in samples)
    assert sum(s.mappings is not None for s in samples) < len(samples)  # full smaps at the slow cadence


def test_record_ends_cleanly_when_the_target_exits(engine, tmp_path):
    pid = engine()
    out = tmp_path / "exit.jsonl"
    rec = spawn_cli("record", str(pid), "--out", str(out), "--interval", "0.1", "--no-perf")
    wait_lines(out, 3)
    stop_process(pid)
    try:
        _, err = rec.communicate(timeout=15)
    finally:
        if rec.poll() is None:
            rec.kill()
    assert rec.returncode == 0
    assert err.strip().splitlines() == [err.strip()] and f"target {pid} exited" in err
    r = Recording.open(str(out))
    n = len(list(r.samples()))
    assert r.complete and r.end["reason"] == "target exited" and r.end["samples"] == n >= 2


def test_live_deltas_rebuild_each_full_read(engine, tmp_path):
    """Deltas between real smaps reads of a growing engine rebuild exactly the table that was read."""
    pid = engine("--scenario", "fragmentation")
    path = tmp_path / "d.jsonl"
    # budget=1.0: a full smaps read at every sample however slow a loaded machine makes it (this
    # test is about the deltas between reads, not about the budget that spaces reads out).
    with LiveSampler(pid, interval_s=0.2, smaps_every=1, budget=1.0, perf=False, engine=False) as sampler:
        w = RecordingWriter(str(path))
        w.open(make_header(sampler.info, interval_s=0.2, smaps_every=1, rollup_every=1, budget=1.0,
                           perf_interval_ms=None))
        enc = SampleEncoder()
        taken = []
        for _ in range(4):
            s = sampler.sample()
            taken.append(s)
            w.write_sample(encode_line(enc.encode(s, first_in_file=w.samples_in_file == 0)))
            time.sleep(0.3)
        w.end("duration reached")
        assert sampler.smaps_cycle.runs == 4 and sampler.smaps_cycle.skipped == 0  # every sample a full read
    records = [json.loads(x) for x in path.read_bytes().splitlines()[2:-1]]
    assert any(r["mappings_delta"]["changed"] for r in records)  # the heap grew between reads
    for s, got in zip(taken, Recording.open(str(path)).samples()):
        assert [(m.start, m.path, m.rss_kb, m.size_kb) for m in got.mappings] == \
               [(m.start, m.path, m.rss_kb, m.size_kb) for m in s.mappings]


def test_record_errors_are_one_line(engine_binary, tmp_path):
    free_pid = 4194000
    while os.path.exists(f"/proc/{free_pid}"):
        free_pid -= 1
    r = run_cli("record", str(free_pid), "--out", str(tmp_path / "x.jsonl"))
    assert r.returncode == 1 and r.stderr == f"hftmem: no process with pid {free_pid}\n"
    assert not (tmp_path / "x.jsonl").exists()
    r = run_cli("record", str(os.getpid()), "--out", str(tmp_path / "no" / "dir" / "x.jsonl"), "--no-perf",
                "--no-engine")
    assert r.returncode == 1 and r.stderr.startswith("hftmem: cannot create recording ")
    assert "No such file or directory" in r.stderr and r.stderr.count("\n") == 1
    r = run_cli("record", str(os.getpid()), "--out", str(tmp_path / "x"), "--rotate", "3")
    assert r.returncode == 2 and "--rotate needs --max-bytes" in r.stderr
    r = run_cli("record", str(os.getpid()), "--out", str(tmp_path / "x"), "--interval", "0")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "seconds must be" in r.stderr


def test_record_size_cap_stops_with_a_notice(engine, tmp_path):
    pid = engine()
    out = tmp_path / "cap.jsonl"
    r = run_cli("record", str(pid), "--out", str(out), "--interval", "0.05", "--max-bytes", "24K",
                "--no-perf", timeout=60)
    assert r.returncode == 0 and "reached --max-bytes" in r.stderr and r.stderr.count("\n") == 1
    assert out.stat().st_size <= 24 * 1024
    rec = Recording.open(str(out))
    assert len(list(rec.samples())) >= 2 and rec.end["reason"] == "size cap"


# --------------------------------------------------------------------------- export








@pytest.mark.slow
def test_export_scrape_matches_proc_then_target_vanishes(engine):
    pid = engine()
    port = free_port()
    exp = spawn_cli("export", str(pid), "--listen", f"127.0.0.1:{port}", "--interval", "0.25")
    try:
        fams = scrape_metrics(port)
        expected = {"hftmem_target_up", "hftmem_rss_bytes", "hftmem_rss_peak_bytes", "hftmem_swap_bytes",
                    "hftmem_page_faults", "hftmem_mapping_size_bytes", "hftmem_mapping_rss_bytes",
                    "hftmem_rss_slope_bytes_per_second", "hftmem_rss_slope_confidence", "hftmem_rss_trend",
                    "hftmem_pool_live_objects", "hftmem_arena_used_bytes", "hftmem_ring_depth_slots",
                    "hftmem_engine_loop_gap_max_seconds", "hftmem_engine_loop_gap_p999_seconds"}
        assert expected <= set(fams), expected - set(fams)
        time.sleep(0.6)
        fams = scrape_metrics(port)
        proc_rss = vm_rss_kib(pid) * 1024  # read at the same moment as the scrape
        labels = {"pid": str(pid), "command": "hftmem-engine", "host": socket.gethostname()}
        assert metric_value(fams, "hftmem_target_up", **labels) == 1
        rss = metric_value(fams, "hftmem_rss_bytes", **labels)
        assert abs(rss - proc_rss) <= 0.05 * proc_rss, (rss, proc_rss)
        heap = metric_value(fams, "hftmem_mapping_rss_bytes", kind="heap", **labels)
        assert 0 < heap < rss
        assert metric_value(fams, "hftmem_pool_capacity_objects", symbol="hftmem_order_pool") == 4096
        assert metric_value(fams, "hftmem_page_faults", type="minor") > 0
        assert fams["hftmem_page_faults"].type == "counter"
        _assert_untouched(pid)

        stop_process(pid)
        deadline = time.monotonic() + 10
        while metric_value(scrape_metrics(port), "hftmem_target_up") != 0:
            assert time.monotonic() < deadline, "hftmem_target_up stayed 1 after the target exited"
            time.sleep(0.1)
        fams = scrape_metrics(port)
        assert "hftmem_rss_bytes" not in fams  # no stale values for a dead target
        exp.send_signal(signal.SIGTERM)
        _, err = exp.communicate(timeout=10)
    finally:
        if exp.poll() is None:
            exp.kill()
            exp.wait()
    assert exp.returncode == 0
    assert err.strip() == f"hftmem: target {pid} exited: serving hftmem_target_up 0 until stopped"


def test_export_errors_are_one_line(engine_binary):
    pid = os.getpid()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = run_cli("export", str(pid), "--listen", f"127.0.0.1:{port}", "--no-perf", "--no-engine")
    assert r.returncode == 1
    assert r.stderr == f"hftmem: cannot listen on 127.0.0.1:{port}: address already in use\n"
    free_pid = 4194000
    while os.path.exists(f"/proc/{free_pid}"):
        free_pid -= 1
    r = run_cli("export", str(free_pid))
    assert r.returncode == 1 and r.stderr == f"hftmem: no process with pid {free_pid}\n"
    r = run_cli("export", str(pid), "--listen", ":9464")
    assert r.returncode == 2 and "name the address to listen on" in r.stderr and r.stderr.count("\n") == 1
    r = run_cli("export", str(pid), "--listen", "127.0.0.1:99999")
    assert r.returncode == 2 and "port must be 1..65535" in r.stderr


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_export_on_a_non_loopback_address_warns_once_then_serves(host):
    """0.0.0.0 (every interface) serves after one warning line naming the process and the
    address; scraped over 127.0.0.1 only. Loopback stays silent (the test above)."""
    if host == "::" and not socket.has_ipv6:
        pytest.skip("no IPv6")
    target = subprocess.Popen(["sleep", "1000"])
    port = free_port()
    exp = spawn_cli("export", str(target.pid), "--listen", f"{host}:{port}" if host != "::" else f"[::]:{port}",
                 "--interval", "0.25", "--no-perf", "--no-engine")
    try:
        try:
            fams = scrape_metrics(port, timeout=20)
        except OSError:
            if host == "::":
                pytest.skip("[::] does not answer on 127.0.0.1 here (bindv6only)")
            raise
        assert metric_value(fams, "hftmem_target_up") == 1
        exp.send_signal(signal.SIGTERM)
        _, err = exp.communicate(timeout=10)
    finally:
        if exp.poll() is None:
            exp.kill()
            exp.wait()
        target.kill()
        target.wait()
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("hftmem: warning: ") and f"process {target.pid} ('sleep')" in lines[0], lines
    assert "not a loopback address" in lines[0] and f":{port}" in lines[0] and "without authentication" in lines[0]
