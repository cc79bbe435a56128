"""pid reuse: a process is (pid, start time). In a private pid namespace the test kills the
target and starts the same program again under the SAME pid (ns_last_pid); `record`, `export`
and the sampler end saying "replaced", and nothing of the newcomer is written or served."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import ROOT
from tests.helpers import free_port

pytestmark = pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare(1)")

# Runs as pid 1 of a new pid namespace (with its own /proc): the whole scenario, one JSON line out.
HARNESS = textwrap.dedent(r'''
    import json, os, signal, subprocess, sys, time, urllib.request

    out, mode, port = sys.argv[1], sys.argv[2], sys.argv[3]

    def stat_ticks(pid):
        return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[19])

    def wait_for(cond, timeout=30.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if cond():
                return True
            time.sleep(0.02)
        return False

    def reuse(pid):
        """Kill ``pid`` and start the same program under the same pid."""
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        with open("/proc/sys/kernel/ns_last_pid", "w") as f:
            f.write(str(pid - 1))
        b = subprocess.Popen(["sleep", "1000"])
        return b

    a = subprocess.Popen(["sleep", "1000"])
    wait_for(lambda: open(f"/proc/{a.pid}/comm").read().strip() == "sleep")
    result = {"pid": a.pid, "a_ticks": stat_ticks(a.pid)}
    cli = [sys.executable, "-m", "hftmem_tui.cli"]
    if mode == "followers":  # the sampler and the watch controller, in process: both say replaced
        from hftmem_tui.feeds.sampler import LiveSampler, ProcessReplaced
        from hftmem_tui.watch.controller import WatchController
        sampler = LiveSampler(a.pid, perf=False, engine=False)
        sampler.start()
        first = sampler.sample()
        watch = WatchController(a.pid)
        b = reuse(a.pid)
        result.update(started=first.stat.starttime_ticks == result["a_ticks"], b_pid=b.pid, b_ticks=stat_ticks(b.pid))
        try:
            sampler.sample()
            result["sampler"] = "sampled the newcomer"
        except ProcessReplaced as e:
            result["sampler"] = str(e)
        sampler.close()
        result["watch"] = watch.replaced()
        b.kill()
        b.wait()
        print(json.dumps(result))
        sys.exit(0)
    if mode == "record":
        tool = subprocess.Popen(cli + ["record", str(a.pid), "--out", out, "--interval", "0.1", "--no-perf",
                                       "--no-engine"], stderr=subprocess.PIPE, text=True)
        ok = wait_for(lambda: os.path.exists(out) and open(out, "rb").read().count(b"\n") >= 4)
    else:
        tool = subprocess.Popen(cli + ["export", str(a.pid), "--listen", f"127.0.0.1:{port}", "--interval", "0.1",
                                       "--no-perf", "--no-engine"], stderr=subprocess.PIPE, text=True)
        def scrape():
            try:
                return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
            except OSError:
                return ""
        ok = wait_for(lambda: "hftmem_target_up" in scrape() and "hftmem_rss_bytes" in scrape())
    # Freeze the tool (ours, not the target) across the swap: it never sees the pid vacant, only reused.
    os.kill(tool.pid, signal.SIGSTOP)
    b = reuse(a.pid)
    result.update(started=ok, b_pid=b.pid, b_ticks=stat_ticks(b.pid))
    os.kill(tool.pid, signal.SIGCONT)
    if mode == "record":
        tool.wait(timeout=30)
        result["stderr"] = tool.stderr.read()
        result["rc"] = tool.returncode
    else:
        wait_for(lambda: "hftmem_target_up" in scrape() and "hftmem_rss_bytes" not in scrape())
        result["metrics"] = scrape()
        tool.send_signal(signal.SIGTERM)
        tool.wait(timeout=30)
        result["stderr"] = tool.stderr.read()
    b.kill()
    b.wait()
    print(json.dumps(result))
''')


def _in_pid_namespace(tmp_path, mode: str, port: int = 0) -> dict:
    out = tmp_path / "r.jsonl"
    r = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c", HARNESS, str(out),
                        mode, str(port)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    if r.returncode != 0 and "Operation not permitted" in r.stderr:
        pytest.skip(f"no pid namespace here: {r.stderr.strip()}")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["started"] and res["b_pid"] == res["pid"] and res["b_ticks"] != res["a_ticks"], res
    res["out"] = out
    return res


def test_record_ends_with_replaced_and_writes_nothing_of_the_newcomer(tmp_path):
    from hftmem_tui.feeds.recording import Recording

    res = _in_pid_namespace(tmp_path, "record")
    assert res["rc"] == 0, res
    rec = Recording.open(str(res["out"]))
    samples = list(rec.samples())
    assert samples and rec.notice is None
    assert all(s.stat.starttime_ticks == res["a_ticks"] for s in samples)  # none is the newcomer's
    assert rec.header["target_start_ticks"] == res["a_ticks"]
    reason = rec.end["reason"]
    assert reason.startswith(f"process {res['pid']} was replaced by another process (started at "), reason
    assert "replaced" in res["stderr"] and "Traceback" not in res["stderr"], res["stderr"]


def test_export_stops_serving_a_replaced_target(tmp_path):
    res = _in_pid_namespace(tmp_path, "export", free_port())
    assert "replaced by another process" in res["stderr"] and "its metrics stop here" in res["stderr"], res["stderr"]
    up = [line for line in res["metrics"].splitlines() if line.startswith("hftmem_target_up{")]
    assert up and up[0].endswith(" 0.0"), up
    assert "hftmem_rss_bytes" not in res["metrics"]  # no value of the newcomer under the old labels


def test_sampler_and_watch_controller_say_replaced(tmp_path):
    res = _in_pid_namespace(tmp_path, "followers")
    want = f"process {res['pid']} was replaced by another process (started at "
    assert res["sampler"].startswith(want) and res["watch"].startswith(want), res
