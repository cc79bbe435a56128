"""examples/grafana/hftmem-dashboard.json queries only what `hftmem export` really serves.

The exporter runs as a real subprocess against the real demo engine; /metrics is scraped over
loopback HTTP and parsed with prometheus_client's parser. Every metric name in every panel
query and variable query of the dashboard must be a sample name in that scrape, so renaming a
metric in commands/export.py (or a typo in the dashboard) fails here.

How metric names are found in PromQL (``promql_metric_names``), in this order:
1. string literals ("...", '...', `...`) are dropped: label values, label_replace arguments;
2. Grafana variables ($pid, ${pid}, ${pid:regex}, [[pid]], $__rate_interval) are dropped;
3. ``{...}`` label matchers are dropped (their identifiers are label names), then ``[...]``
   ranges and subqueries (durations);
4. numbers and durations (1000, 0.5e3, 5m, 0x1f) are dropped;
5. after by / without / on / ignoring / group_left / group_right the parenthesised list is
   label names and is dropped;
6. an identifier followed by ``(`` is a function or aggregation: it must be a PromQL one
   (PROMQL_FUNCTIONS), so ``rat(x)`` fails instead of hiding x;
7. keywords (and, or, unless, bool, offset, by..., aggregation names before ``by``, inf, nan)
   are not metrics;
8. every other identifier is a metric name.
``label_values(SELECTOR, LABEL)`` (a Grafana variable query) contributes SELECTOR's names only.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ROOT, proc_status

DASHBOARD = ROOT / "examples" / "grafana" / "hftmem-dashboard.json"
GRID_COLUMNS = 24  # Grafana's grid is 24 columns wide

# Series Prometheus itself adds to every scrape target: never in /metrics, always queryable.
PROMETHEUS_SYNTHETIC = frozenset({"up"})
# Only served when perf runs; the exporter says "hftmem: perf: ..." on stderr when it cannot.
PERF_ONLY = frozenset({"hftmem_perf_events_total"})
GRAFANA_BUILTINS = frozenset({"__rate_interval", "__interval", "__interval_ms", "__range", "__range_s",
                              "__range_ms", "__from", "__to"})

AGGREGATIONS = frozenset({"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
                          "bottomk", "topk", "quantile", "limitk", "limit_ratio"})
PROMQL_FUNCTIONS = AGGREGATIONS | frozenset({
    "abs", "absent", "absent_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min",
    "day_of_month", "day_of_week", "day_of_year", "days_in_month", "delta", "deriv", "exp", "floor",
    "histogram_avg", "histogram_count", "histogram_fraction", "histogram_quantile", "histogram_sum",
    "histogram_stddev", "histogram_stdvar", "holt_winters", "double_exponential_smoothing", "hour",
    "idelta", "increase", "irate", "label_join", "label_replace", "ln", "log2", "log10", "minute",
    "month", "predict_linear", "rate", "resets", "round", "scalar", "sgn", "sort", "sort_desc",
    "sort_by_label", "sort_by_label_desc", "sqrt", "time", "timestamp", "vector", "year",
    "avg_over_time", "min_over_time", "max_over_time", "sum_over_time", "count_over_time",
    "quantile_over_time", "stddev_over_time", "stdvar_over_time", "last_over_time", "present_over_time",
    "mad_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh", "cos", "cosh", "sin", "sinh",
    "tan", "tanh", "deg", "rad", "pi",
})
LABEL_LIST_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
KEYWORDS = LABEL_LIST_KEYWORDS | AGGREGATIONS | frozenset({"and", "or", "unless", "bool", "offset", "atan2",
                                                          "inf", "nan"})

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GRAFANA_VAR = re.compile(r"\$\{[^}]*\}|\$\w+|\[\[[^\]]*\]\]")
_TOKEN = re.compile(r"(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\w*)"
                    r"|(?P<ident>[A-Za-z_:][\w:]*)"
                    r"|(?P<open>\()|(?P<close>\))|(?P<other>\S)")
_LABEL_VALUES = re.compile(r"^\s*label_values\((?P<args>.*)\)\s*$", re.S)


def promql_metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (rules in the module docstring). Raises
    AssertionError on an unknown function or unbalanced brackets."""
    text = _GRAFANA_VAR.sub(" ", _STRING.sub('""', expr))
    for opening, closing in ("{}", "[]"):
        assert text.count(opening) == text.count(closing), f"unbalanced {opening}{closing} in {expr!r}"
    text = re.sub(r"\{[^{}]*\}", " ", text)
    text = re.sub(r"\[[^\[\]]*\]", " ", text)
    tokens = [(m.lastgroup, m.group()) for m in _TOKEN.finditer(text)]
    assert sum(k == "open" for k, _ in tokens) == sum(k == "close" for k, _ in tokens), \
        f"unbalanced () in {expr!r}"
    names: set[str] = set()
    i = 0
    while i < len(tokens):
        kind, tok = tokens[i]
        nxt = tokens[i + 1][0] if i + 1 < len(tokens) else None
        if kind == "ident" and tok in LABEL_LIST_KEYWORDS and nxt == "open":
            while tokens[i][0] != "close":  # a label list: skip through its ")"
                i += 1
        elif kind == "ident" and nxt == "open":
            assert tok in PROMQL_FUNCTIONS, f"{tok}() is not a PromQL function (in {expr!r})"
        elif kind == "ident" and tok not in KEYWORDS:
            names.add(tok)
        i += 1
    return names


def variable_query_metric_names(query: str) -> set[str]:
    """Metric names of a Grafana Prometheus variable query (label_values(SELECTOR, LABEL) or PromQL)."""
    m = _LABEL_VALUES.match(query)
    if m is None:
        return promql_metric_names(query)
    selector, _, _label = m.group("args").rpartition(",")
    return promql_metric_names(selector) if selector else set()


def test_metric_name_tokenizer_rules():
    expr = ('sum by (pid, symbol) (rate(foo_total{job="x", pid=~"$pid"}[$__rate_interval] offset 5m))'
            ' / on(pid) group_left(symbol) bar{a="b{c}"} > bool 0.5e3 and baz_seconds * 1000'
            ' or label_replace(qux, "dst", "$1", "src", "(.*)") unless time() - ${pid:regex} > inf')
    assert promql_metric_names(expr) == {"foo_total", "bar", "baz_seconds", "qux"}
    assert promql_metric_names("max_over_time(up[10m:1m])") == {"up"}
    assert variable_query_metric_names('label_values(hftmem_target_up{instance=~"$instance"}, pid)') \
        == {"hftmem_target_up"}
    assert variable_query_metric_names("label_values(instance)") == set()
    with pytest.raises(AssertionError, match="rat"):
        promql_metric_names("rat(foo_total[5m])")
    with pytest.raises(AssertionError, match="unbalanced"):
        promql_metric_names("rate(foo_total[5m]")


# --------------------------------------------------------------------------- the dashboard


def _load() -> dict:
    return json.loads(DASHBOARD.read_text())


def _all_panels(dash: dict) -> list[dict]:
    out = []
    for p in dash["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))  # a collapsed row keeps its panels inside it
    return out


def _targets(dash: dict) -> list[tuple[str, str]]:
    """(where, expr) of every panel target."""
    return [(f"panel {p['id']} {p['title']!r} {t['refId']}", t["expr"])
            for p in _all_panels(dash) if p["type"] != "row" for t in p["targets"]]


def _variable_queries(dash: dict) -> list[tuple[str, str]]:
    out = []
    for v in dash["templating"]["list"]:
        if v["type"] == "query":
            q = v["query"]
            out.append((f"variable {v['name']}", q["query"] if isinstance(q, dict) else q))
    return out


def _overlap(a: dict, b: dict) -> bool:
    return a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"] and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"]


def test_dashboard_is_a_grafana_dashboard():
    dash = _load()
    assert dash["title"] and dash["uid"] and dash.get("id") is None  # id None: Grafana assigns one on import
    assert isinstance(dash["schemaVersion"], int) and dash["schemaVersion"] >= 39
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    for name in ("instance", "pid"):
        v = variables[name]
        assert v["type"] == "query" and v["datasource"]["uid"] == "${datasource}"
        assert v["query"]["query"].startswith("label_values(")
    panels = _all_panels(dash)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {sorted(i for i in ids if ids.count(i) > 1)}"
    for p in panels:
        g = p["gridPos"]
        assert all(isinstance(g[k], int) for k in "hwxy"), p["title"]
        assert g["w"] > 0 and g["h"] > 0 and g["x"] >= 0 and g["y"] >= 0 and g["x"] + g["w"] <= GRID_COLUMNS, p["title"]
        if p["type"] == "row":
            continue
        assert p["type"] in {"timeseries", "stat", "state-timeline", "gauge", "bargauge", "table"}, p["type"]
        assert p["title"] and p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert p["targets"], f"panel {p['title']!r} has no targets"
        ref_ids = [t["refId"] for t in p["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), p["title"]
        for t in p["targets"]:
            assert t["expr"].strip() and t["datasource"] == p["datasource"], (p["title"], t["refId"])
    top = [p["gridPos"] for p in dash["panels"]]  # panels of a collapsed row are not laid out
    for i, a in enumerate(top):
        for b in top[i + 1:]:
            assert not _overlap(a, b), (a, b)


def test_dashboard_uses_only_defined_variables():
    dash = _load()
    defined = {v["name"] for v in dash["templating"]["list"]} | GRAFANA_BUILTINS
    for where, expr in _targets(dash) + _variable_queries(dash):
        used = set(re.findall(r"\$\{(\w+)[^}]*\}|\$(\w+)", expr))
        for name in {a or b for a, b in used}:
            assert name in defined, f"{where}: ${name} is not a dashboard variable"


def test_every_target_selects_a_metric():
    for where, expr in _targets(_load()):
        assert promql_metric_names(expr), f"{where}: no metric in {expr!r}"


# --------------------------------------------------------------------------- against the exporter


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _served(port: int) -> dict[str, str]:
    """Sample name -> family type of one scrape; {} while the exporter is not listening yet."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return {}
    # Sample names, not family names: Prometheus stores a counter as NAME_total (and NAME_created).
    return {s.name: f.type for f in text_string_to_metric_families(text) for s in f.samples}


@pytest.mark.slow
def test_every_dashboard_metric_is_served(engine, tmp_path):
    dash = _load()
    wanted: dict[str, list[str]] = {}
    for where, expr in _targets(dash) + _variable_queries(dash):
        for name in promql_metric_names(expr) if where.startswith("panel") else variable_query_metric_names(expr):
            wanted.setdefault(name, []).append(where)
    wanted_served = set(wanted) - PROMETHEUS_SYNTHETIC
    assert {"hftmem_rss_bytes", "hftmem_page_faults_total", "hftmem_engine_loop_gap_p999_seconds"} <= wanted_served

    pid = engine()
    port = _free_port()
    err_path = tmp_path / "export.err"
    with err_path.open("w") as err:
        exp = subprocess.Popen([sys.executable, "-m", "hftmem_tui.cli", "export", str(pid),
                                "--listen", f"127.0.0.1:{port}", "--interval", "0.25"],
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err, text=True)
    try:
        # Some families appear only after a few samples (rates, the full smaps read): wait for
        # all of them, then judge the last scrape.
        deadline = time.monotonic() + 30
        served: dict[str, str] = {}
        while time.monotonic() < deadline:
            assert exp.poll() is None, f"exporter exited {exp.returncode}: {err_path.read_text()}"
            served = _served(port)
            if wanted_served <= set(served):
                break
            time.sleep(0.1)
        excused = PERF_ONLY if "hftmem: perf:" in err_path.read_text() else frozenset()
        missing = {n: wanted[n] for n in sorted(wanted_served - set(served) - excused)}
        assert not missing, f"the dashboard queries metrics /metrics does not serve: {missing}"
        for name in wanted_served & set(served):
            if served[name] == "counter":
                assert name.endswith(("_total", "_created")), name
        st = proc_status(pid)
        assert st["TracerPid"] == "0" and not st["State"].startswith(("T", "t")), st
    finally:
        exp.send_signal(signal.SIGTERM)
        try:
            exp.wait(timeout=10)
        except subprocess.TimeoutExpired:
            exp.kill()
            exp.wait()
    assert exp.returncode == 0, err_path.read_text()
