"""tracefs lookup: a missing mount is one clear line."""

from __future__ import annotations

import pytest

from hftmem_tui.errors import TracefsMissing
from hftmem_tui.sources.perf.uprobes import find_tracefs


def test_tracefs_not_mounted_is_one_clear_line(tmp_path):
    with pytest.raises(TracefsMissing) as e:
        find_tracefs((str(tmp_path / "tracing"), str(tmp_path)))
    assert "\n" not in str(e.value) and "mount -t tracefs nodev /sys/kernel/tracing" in str(e.value)
    (tmp_path / "uprobe_events").write_text("")
    assert find_tracefs((str(tmp_path),)) == str(tmp_path)
