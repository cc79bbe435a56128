"""decode(): raw bytes + a ptype/o layout -> values; EngineStats view. No process, no gdb.

The ptype/o texts below were captured from gdb 13 on real binaries (g++ 12 -O2 -g).
"""

from __future__ import annotations

import random
import struct

import pytest

from hftmem_tui.errors import NotAnEngine, SourceError
from hftmem_tui.model.decode import (
    ENGINE_MAGIC,
    EngineStats,
    decode,
    decode_engine_stats,
    is_signed_type,
)
from hftmem_tui.sources.symbols import Field, Layout, parse_ptype_o

# gdb -batch -ex 'ptype/o hftmem_engine_stats' on a binary with native/engine/engine.h
ENGINE_STATS_PTYPE = '/* offset      |    size */  type = struct EngineStats {\n/*      0      |       8 */    char magic[8];\n/*      8      |       8 */    uint64_t version;\n/*     16      |       8 */    uint64_t pid;\n/*     24      |       8 */    uint64_t start_time_ns;\n/*     32      |       8 */    uint64_t ticks;\n/*     40      |       8 */    uint64_t messages;\n/*     48      |       8 */    uint64_t scenarios;\n/*     56      |       8 */    uint64_t pool_live;\n/*     64      |       8 */    uint64_t pool_high_water;\n/*     72      |       8 */    uint64_t pool_capacity;\n/*     80      |       8 */    uint64_t pool_rejects;\n/*     88      |       8 */    uint64_t pool_double_frees;\n/*     96      |       8 */    uint64_t pool_poison_violations;\n/*    104      |       8 */    uint64_t arena_used;\n/*    112      |       8 */    uint64_t arena_high_water;\n/*    120      |       8 */    uint64_t arena_capacity;\n/*    128      |       8 */    uint64_t arena_resets;\n/*    136      |       8 */    uint64_t arena_failed;\n/*    144      |       8 */    uint64_t ring_depth;\n/*    152      |       8 */    uint64_t ring_capacity;\n/*    160      |       8 */    uint64_t ring_drops;\n/*    168      |       8 */    uint64_t hot_path_allocs;\n/*    176      |       8 */    uint64_t leaked_bytes;\n/*    184      |       8 */    uint64_t corrupted_orders;\n/*    192      |       8 */    uint64_t frag_live_bytes;\n/*    200      |       8 */    uint64_t ring_ns_per_msg;\n/*    208      |       8 */    uint64_t msgs_per_sec;\n/*    216      |       8 */    uint64_t window_index;\n/*    224      |       8 */    uint64_t last_max_gap_ns;\n/*    232      |       8 */    uint64_t last_p999_gap_ns;\n/*    240      |       8 */    uint64_t last_iterations;\n/*    248      |     512 */    uint64_t max_gap_hist[64];\n/*    760      |     512 */    uint64_t p999_gap_hist[64];\n/* XXX  8-byte padding   */\n\n                               /* total size (bytes): 1280 */\n                             }\n'

# struct Stats with a nested struct Order (char[8], int64, bitfields, nested Inner)
STATS_PTYPE = '/* offset      |    size */  type = struct Stats {\n/*      0      |       8 */    char magic[8];\n/*      8      |       8 */    uint64_t version;\n/*     16      |       8 */    uint64_t counter;\n/*     24      |     512 */    uint64_t hist[64];\n/*    536      |      40 */    struct Order {\n/*    536      |       8 */        char symbol[8];\n/*    544      |       8 */        int64_t price;\n/*    552      |       4 */        uint32_t qty;\n/*    556: 0   |       4 */        unsigned int flags : 3;\n/*    556: 3   |       4 */        unsigned int side : 1;\n/* XXX  4-bit hole       */\n/* XXX  3-byte hole      */\n/*    560      |       8 */        struct Inner {\n/*    560      |       2 */            int16_t a;\n/*    562      |       1 */            uint8_t b;\n/* XXX  1-byte hole      */\n/*    564      |       4 */            int32_t c;\n\n                                       /* total size (bytes):    8 */\n                                   } in;\n/*    568      |       8 */        double px;\n\n                                   /* total size (bytes):   40 */\n                               } last;\n/*    576      |       4 */    int32_t neg;\n/* XXX  4-byte padding   */\n\n                               /* total size (bytes):  584 */\n                             }\n'

# a class with a base, static member, std::atomic, arrays of structs, unions, fn pointer
CX_PTYPE = '/* offset      |    size */  type = struct Cx : public Base {\n                               static int s_count;\n/*     16      |       8 */    struct std::atomic<unsigned long> [with _Tp = unsigned long] : public std::__atomic_base<_Tp> {\n                                   static const bool is_always_lock_free;\n\n                                   /* total size (bytes):    8 */\n                               } at;\n/*     24      |      16 */    P parr[2];\n/*     40      |       4 */    union {\n/*                     4 */        int32_t i;\n/*                     4 */        float f;\n\n                                   /* total size (bytes):    4 */\n                               } u;\n/*     44      |       4 */    union {\n/*                     4 */        int32_t ai;\n/*                     4 */        float af;\n\n                                   /* total size (bytes):    4 */\n                               };\n/*     48      |       8 */    const char *name;\n/*     56      |       8 */    void (*fn)(int);\n/*     64      |       1 */    Side side;\n/*     65      |       1 */    bool ok;\n/* XXX 62-byte hole      */\n/*    128      |       8 */    uint64_t padded;\n/*    136      |      48 */    struct ns::Q {\n/*    136      |      24 */        P pts[3];\n/*    160      |      24 */        int m[2][3];\n\n                                   /* total size (bytes):   48 */\n                               } q;\n/*    184: 0   |       8 */    unsigned long long big : 40;\n/* XXX  3-byte padding   */\n\n                               /* total size (bytes):  192 */\n                             }\n'

STATS_NAMES = [
    "version", "pid", "start_time_ns", "ticks", "messages", "scenarios", "pool_live",
    "pool_high_water", "pool_capacity", "pool_rejects", "pool_double_frees",
    "pool_poison_violations", "arena_used", "arena_high_water", "arena_capacity",
    "arena_resets", "arena_failed", "ring_depth", "ring_capacity", "ring_drops",
    "hot_path_allocs", "leaked_bytes", "corrupted_orders", "frag_live_bytes",
    "ring_ns_per_msg", "msgs_per_sec", "window_index", "last_max_gap_ns",
    "last_p999_gap_ns", "last_iterations",
]  # fmt: skip


def engine_bytes(layout: Layout, values: dict, magic: bytes = ENGINE_MAGIC) -> bytes:
    """Encode values into a block laid out by ``layout`` (the inverse of decode)."""
    buf = bytearray(layout.size)
    buf[layout.field("magic").offset : layout.field("magic").offset + 8] = magic
    for name, value in values.items():
        f = layout.field(name)
        if isinstance(value, list):
            for i, v in enumerate(value):
                struct.pack_into("<Q", buf, f.offset + 8 * i, v)
        else:
            struct.pack_into("<Q", buf, f.offset, value)
    return bytes(buf)


def sample_values() -> dict:
    vals = {name: 1000 + i for i, name in enumerate(STATS_NAMES)}
    vals["version"] = 1
    vals["scenarios"] = 0b1000_0101  # leak, overflow, pool-exhaustion
    vals["max_gap_hist"] = [10 * i for i in range(64)]
    vals["p999_gap_hist"] = [2**64 - 1 - i for i in range(64)]
    return vals


class TestParsePtype:
    def test_engine_stats_offsets(self):
        """Every field of the real EngineStats, with its offset, size and array shape."""
        lay = parse_ptype_o(ENGINE_STATS_PTYPE)
        assert lay.type_name == "struct EngineStats"
        assert lay.size == 1280
        assert [f.path for f in lay.fields] == ["magic", *STATS_NAMES, "max_gap_hist", "p999_gap_hist"]
        assert lay.field("window_index").offset == 27 * 8
        hist = lay.field("max_gap_hist")
        assert (hist.offset, hist.size, hist.dims, hist.elem_size, hist.elem_type) == (248, 512, (64,), 8, "uint64_t")
        magic = lay.field("magic")
        assert (magic.type_name, magic.elem_type, magic.count) == ("char [8]", "char", 8)

    def test_nested_struct_and_bitfields(self):
        """Nested structs are flattened with dotted paths; bitfields keep their bit position."""
        lay = parse_ptype_o(STATS_PTYPE)
        assert lay.size == 584
        assert lay.field("last").is_struct and lay.field("last").size == 40
        assert lay.field("last.symbol").offset == 536
        assert lay.field("last.price").offset == 544
        assert lay.field("last.in.c").offset == 564
        side = lay.field("last.side")
        assert (side.offset, side.bit_offset, side.bit_size) == (556, 3, 1)
        assert lay.field("neg").type_name == "int32_t"

    def test_class_with_unions_atomics_and_pointers(self):
        """Static members are skipped, anonymous unions join the parent, fn pointers are named."""
        lay = parse_ptype_o(CX_PTYPE)
        paths = [f.path for f in lay.fields]
        assert "s_count" not in paths
        assert lay.type_name == "struct Cx"
        assert lay.field("at").elem_type == "struct std::atomic<unsigned long>"
        assert lay.field("u.f").offset == lay.field("u.i").offset == 40
        assert lay.field("ai").offset == lay.field("af").offset == 44
        assert lay.field("fn").offset == 56
        assert lay.field("parr").dims == (2,) and lay.field("parr").elem_type == "P"
        assert lay.field("q.m").dims == (2, 3) and lay.field("q.m").offset == 160
        assert lay.field("big").bit_size == 40
        assert lay.field("padded").offset == 128
        assert lay.size == 192

    def test_scalar_is_not_a_layout(self):
        assert parse_ptype_o("type = unsigned long [16]\n") is None


class TestDecode:
    def test_signedness_by_type_name(self):
        assert is_signed_type("int64_t") and is_signed_type("const int") and is_signed_type("char")
        assert not is_signed_type("uint64_t") and not is_signed_type("unsigned int")
        assert not is_signed_type("struct std::atomic<unsigned long>")
        assert is_signed_type("std::atomic<long>")

    def test_values_of_nested_struct(self):
        """Signed/unsigned ints, char arrays as bytes, arrays as lists, bitfields, doubles."""
        lay = parse_ptype_o(STATS_PTYPE)
        buf = bytearray(lay.size)
        buf[0:8] = b"HFTMEM01"
        struct.pack_into("<Q", buf, 8, 7)
        struct.pack_into("<64Q", buf, 24, *range(100, 164))
        buf[536:544] = b"AAPL\0\0\0\0"
        struct.pack_into("<q", buf, 544, -12345)
        struct.pack_into("<I", buf, 552, 100)
        struct.pack_into("<I", buf, 556, 5 | (1 << 3))
        struct.pack_into("<hBxi", buf, 560, -2, 7, -9)
        struct.pack_into("<d", buf, 568, 1.5)
        struct.pack_into("<i", buf, 576, -7)
        v = decode(lay, bytes(buf))
        assert v["magic"] == b"HFTMEM01"
        assert v["version"] == 7
        assert v["hist"] == list(range(100, 164))
        assert v["last.symbol"] == b"AAPL\0\0\0\0"
        assert v["last.price"] == -12345
        assert v["last.qty"] == 100
        assert (v["last.flags"], v["last.side"]) == (5, 1)
        assert (v["last.in.a"], v["last.in.b"], v["last.in.c"]) == (-2, 7, -9)
        assert v["last.px"] == 1.5
        assert v["neg"] == -7
        assert "last" not in v and "last.in" not in v  # parents are not repeated

    def test_short_data_decodes_what_it_covers(self):
        lay = parse_ptype_o(STATS_PTYPE)
        v = decode(lay, b"HFTMEM01" + struct.pack("<Q", 3))
        assert v == {"magic": b"HFTMEM01", "version": 3}

    def test_multidim_and_atomic(self):
        lay = parse_ptype_o(CX_PTYPE)
        buf = bytearray(lay.size)
        struct.pack_into("<Q", buf, 16, 2**63 + 5)
        struct.pack_into("<6i", buf, 160, 1, 2, 3, -4, 5, 6)
        v = decode(lay, bytes(buf))
        assert v["at"] == 2**63 + 5
        assert v["q.m"] == [[1, 2, 3], [-4, 5, 6]]
        assert v["parr"] == [0, 0]  # 8-byte struct elements: their raw little-endian value


class TestEngineStats:
    def test_decode_real_layout(self):
        lay = parse_ptype_o(ENGINE_STATS_PTYPE)
        vals = sample_values()
        st = decode_engine_stats(lay, engine_bytes(lay, vals))
        assert isinstance(st, EngineStats)
        assert st.magic == ENGINE_MAGIC and st.version == 1
        for name in STATS_NAMES:
            assert getattr(st, name) == vals[name], name
        assert st.max_gap_hist == tuple(vals["max_gap_hist"])
        assert st.p999_gap_hist[0] == 2**64 - 1
        assert st.active_scenarios == ("leak", "overflow", "pool-exhaustion")
        with pytest.raises(AttributeError):
            st.ticks = 0  # frozen

    def test_reordered_struct_decodes_by_name(self):
        """Shuffle the fields (new offsets): values still land in the right names."""
        lay = parse_ptype_o(ENGINE_STATS_PTYPE)
        shuffled = list(lay.fields)
        random.Random(7).shuffle(shuffled)
        off, moved = 0, []
        for f in shuffled:
            moved.append(Field(**{**f.__dict__, "offset": off}))
            off += f.size
        relaid = Layout(lay.type_name, off, tuple(moved))
        assert relaid.field("magic").offset != 0 or relaid.field("version").offset != 8
        vals = sample_values()
        st = decode_engine_stats(relaid, engine_bytes(relaid, vals))
        assert st.ticks == vals["ticks"] and st.last_iterations == vals["last_iterations"]
        assert list(st.max_gap_hist) == vals["max_gap_hist"]

    def test_wrong_magic_is_not_an_engine(self):
        lay = parse_ptype_o(ENGINE_STATS_PTYPE)
        data = engine_bytes(lay, sample_values(), magic=b"HFTMEM99")
        with pytest.raises(NotAnEngine, match="magic"):
            decode_engine_stats(lay, data)
        with pytest.raises(NotAnEngine, match="magic"):
            decode_engine_stats(lay, bytes(lay.size))

    def test_unknown_version_and_missing_field(self):
        lay = parse_ptype_o(ENGINE_STATS_PTYPE)
        vals = sample_values() | {"version": 2}
        with pytest.raises(NotAnEngine, match="version 2"):
            decode_engine_stats(lay, engine_bytes(lay, vals))
        other = parse_ptype_o(STATS_PTYPE)  # has magic+version but not the engine's fields
        buf = bytearray(other.size)
        buf[0:8] = ENGINE_MAGIC
        buf[8] = 1
        with pytest.raises(NotAnEngine, match="no field"):
            decode_engine_stats(other, bytes(buf))

    def test_errors_are_one_line(self):
        lay = parse_ptype_o(ENGINE_STATS_PTYPE)
        with pytest.raises(SourceError) as info:
            decode_engine_stats(lay, bytes(lay.size))
        assert "\n" not in str(info.value)
