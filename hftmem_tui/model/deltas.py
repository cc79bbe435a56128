"""What changed between two smaps samples: per-mapping growth, new and vanished mappings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from collections.abc import Iterable
from dataclasses import dataclass

if TYPE_CHECKING:  # types only: model imports no source at run time
    from hftmem_tui.sources.procfs import Mapping



@dataclass(frozen=True, slots=True)
class MappingDelta:
    """Growth of one mapping present in both samples (kB; negative = shrank)."""

    start: int
    path: str
    name: str
    kind: str
    rss_delta_kb: int
    size_delta_kb: int
    dirty_delta_kb: int
    before: Mapping
    after: Mapping


@dataclass(frozen=True, slots=True)
class MappingDeltas:
    """changed: mappings whose rss/size/dirty changed, largest |rss change| first."""

    changed: tuple[MappingDelta, ...]
    new: tuple[Mapping, ...]
    vanished: tuple[Mapping, ...]

    @property
    def rss_delta_kb(self) -> int:
        """Total RSS change, counting new mappings as growth and vanished ones as shrinkage."""
        return (sum(d.rss_delta_kb for d in self.changed) + sum(m.rss_kb for m in self.new)
                - sum(m.rss_kb for m in self.vanished))

    def rss_delta_by_kind(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for d in self.changed:
            out[d.kind] = out.get(d.kind, 0) + d.rss_delta_kb
        for m in self.new:
            out[m.kind] = out.get(m.kind, 0) + m.rss_kb
        for m in self.vanished:
            out[m.kind] = out.get(m.kind, 0) - m.rss_kb
        return out


def mapping_deltas(before: Iterable[Mapping], after: Iterable[Mapping]) -> MappingDeltas:
    """Compare two samples keyed by (start, path): a mapping that moved or was replaced by
    another file at the same address counts as one vanished plus one new."""
    old = {(m.start, m.path): m for m in before}
    changed, new = [], []
    seen = set()
    for m in after:
        key = (m.start, m.path)
        prev = old.get(key)
        if prev is None:
            new.append(m)
            continue
        seen.add(key)
        d_rss, d_size = m.rss_kb - prev.rss_kb, m.size_kb - prev.size_kb
        d_dirty = m.dirty_kb - prev.dirty_kb
        if d_rss or d_size or d_dirty:
            changed.append(MappingDelta(m.start, m.path, m.name, m.kind, d_rss, d_size, d_dirty,
                                        prev, m))
    vanished = [m for key, m in old.items() if key not in seen]
    changed.sort(key=lambda d: (-abs(d.rss_delta_kb), -abs(d.size_delta_kb), d.start))
    return MappingDeltas(tuple(changed), tuple(new), tuple(vanished))


@dataclass(frozen=True, slots=True)
class KindSummary:
    kind: str
    count: int
    size_kb: int
    rss_kb: int
    pss_kb: int
    dirty_kb: int
    swap_kb: int


def summarize_by_kind(mappings: Iterable[Mapping]) -> dict[str, KindSummary]:
    """Totals per Mapping.kind (heap, stack, anon, file, vdso, special), largest RSS first."""
    acc: dict[str, list[int]] = {}
    for m in mappings:
        a = acc.get(m.kind)
        if a is None:
            a = acc[m.kind] = [0, 0, 0, 0, 0, 0]
        a[0] += 1
        a[1] += m.size_kb
        a[2] += m.rss_kb
        a[3] += m.pss_kb
        a[4] += m.dirty_kb
        a[5] += m.swap_kb
    ordered = sorted(acc.items(), key=lambda kv: (-kv[1][2], kv[0]))
    return {k: KindSummary(k, *v) for k, v in ordered}
