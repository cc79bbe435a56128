// hftmem_tui.sources.procfs._smaps: the /proc/PID/smaps parser and the pmap -x row formatter
// in native code. The Python versions (sources/procfs/maps.py) are the reference and the
// fallback: whatever this code does not recognise as the kernel's exact layout makes it return
// None, and the caller runs the Python parser on the same text (same result, same errors).
//
//   init(Mapping, field_names)  -> None   once, at import: where each slot of Mapping lives
//   parse(buffer)               -> tuple[Mapping, ...] | None
//   format_rows(mappings)       -> str | None   the pmap -x rows `hftmem snapshot` prints
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <cstdint>
#include <cstring>
#include <string>

namespace {

constexpr int kHead = 7;     // start, end, perms, offset, dev, inode, path
constexpr int kCounters = 12;
constexpr int kFields = kHead + kCounters;

PyTypeObject* g_type = nullptr;          // Mapping
Py_ssize_t g_offset[kFields];            // byte offset of each slot in a Mapping
PyObject* g_empty = nullptr;             // ""

// smaps key -> counter index (the order of maps.py's _SMAPS_FIELDS), -1 when unknown.
int counter_index(const char* k, size_t n) {
  switch (n) {
    case 3:
      if (!memcmp(k, "Rss", 3)) return 1;
      if (!memcmp(k, "Pss", 3)) return 2;
      break;
    case 4:
      if (!memcmp(k, "Size", 4)) return 0;
      if (!memcmp(k, "Swap", 4)) return 10;
      break;
    case 6:
      if (!memcmp(k, "Locked", 6)) return 11;
      break;
    case 9:
      if (!memcmp(k, "Anonymous", 9)) return 8;
      break;
    case 10:
      if (!memcmp(k, "Referenced", 10)) return 7;
      break;
    case 12:
      if (!memcmp(k, "Shared_Clean", 12)) return 3;
      if (!memcmp(k, "Shared_Dirty", 12)) return 4;
      break;
    case 13:
      if (!memcmp(k, "Private_Clean", 13)) return 5;
      if (!memcmp(k, "Private_Dirty", 13)) return 6;
      if (!memcmp(k, "AnonHugePages", 13)) return 9;
      break;
  }
  return -1;
}

int hexval(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Hex digits in [p, e) -> value; false when empty, not hex, or over 64 bits.
bool parse_hex(const char* p, const char* e, uint64_t* out) {
  if (p == e || e - p > 16) return false;
  uint64_t v = 0;
  for (; p < e; ++p) {
    int d = hexval(static_cast<unsigned char>(*p));
    if (d < 0) return false;
    v = (v << 4) | static_cast<uint64_t>(d);
  }
  *out = v;
  return true;
}

bool parse_dec(const char* p, const char* e, uint64_t* out) {
  if (p == e || e - p > 19) return false;
  uint64_t v = 0;
  for (; p < e; ++p) {
    if (*p < '0' || *p > '9') return false;
    v = v * 10 + static_cast<uint64_t>(*p - '0');
  }
  *out = v;
  return true;
}

// Whitespace Python's str.split() would strip that the kernel never pads with: bail out.
bool odd_space(unsigned char c) {
  return c == '\t' || c == '\v' || c == '\f' || c == '\r' || (c >= 0x1c && c <= 0x1f) ||
         c == 0xc2 || c == 0xe1 || c == 0xe2 || c == 0xe3;  // lead bytes of Unicode spaces
}

// Small caches: perms and dev repeat across mappings, a file's path repeats on its 4-5 areas.
struct StrCache {
  static constexpr int kSlots = 16;
  std::string key[kSlots];
  PyObject* val[kSlots] = {};
  int next = 0;
  ~StrCache() {
    for (PyObject* v : val) Py_XDECREF(v);
  }
  PyObject* get(const char* p, size_t n) {  // new reference, or NULL with an exception set
    for (int i = 0; i < kSlots; ++i) {
      if (val[i] && key[i].size() == n && !memcmp(key[i].data(), p, n)) {
        Py_INCREF(val[i]);
        return val[i];
      }
    }
    PyObject* s = PyUnicode_DecodeUTF8(p, static_cast<Py_ssize_t>(n), "surrogateescape");
    if (!s) return nullptr;
    int slot = next++ % kSlots;
    Py_XDECREF(val[slot]);
    key[slot].assign(p, n);
    val[slot] = s;
    Py_INCREF(s);
    return s;
  }
};

struct Head {
  uint64_t start, end, offset, inode;
  const char *perms, *dev, *path;
  size_t perms_n, dev_n, path_n;
};

// One header line "start-end perms offset dev inode [path]" in [p, e); false: not the kernel's shape.
bool parse_head(const char* p, const char* e, Head* h) {
  const char* tok[5];
  const char* tok_end[5];
  const char* q = p;
  for (int i = 0; i < 5; ++i) {
    while (q < e && *q == ' ') ++q;
    tok[i] = q;
    while (q < e && *q != ' ') {
      if (odd_space(static_cast<unsigned char>(*q))) return false;
      ++q;
    }
    tok_end[i] = q;
    if (tok[i] == tok_end[i]) return false;
  }
  const char* dash = static_cast<const char*>(memchr(tok[0], '-', tok_end[0] - tok[0]));
  if (!dash || !parse_hex(tok[0], dash, &h->start) || !parse_hex(dash + 1, tok_end[0], &h->end)) return false;
  if (!parse_hex(tok[2], tok_end[2], &h->offset) || !parse_dec(tok[4], tok_end[4], &h->inode)) return false;
  h->perms = tok[1];
  h->perms_n = tok_end[1] - tok[1];
  h->dev = tok[3];
  h->dev_n = tok_end[3] - tok[3];
  while (q < e && *q == ' ') ++q;
  if (q < e && odd_space(static_cast<unsigned char>(*q))) return false;
  h->path = q;
  h->path_n = e - q;
  return true;
}

inline void set_slot(PyObject* obj, int i, PyObject* v) {
  *reinterpret_cast<PyObject**>(reinterpret_cast<char*>(obj) + g_offset[i]) = v;  // steals v
}

inline PyObject* get_slot(PyObject* obj, int i) {
  return *reinterpret_cast<PyObject**>(reinterpret_cast<char*>(obj) + g_offset[i]);  // borrowed
}

struct Parser {
  StrCache perms, dev;
  PyObject* last_path = nullptr;  // the previous mapping's path and its bytes
  std::string last_path_bytes;
  ~Parser() { Py_XDECREF(last_path); }

  PyObject* path(const char* p, size_t n) {
    if (n == 0) {
      Py_INCREF(g_empty);
      return g_empty;
    }
    if (last_path && last_path_bytes.size() == n && !memcmp(last_path_bytes.data(), p, n)) {
      Py_INCREF(last_path);
      return last_path;
    }
    PyObject* s = PyUnicode_DecodeUTF8(p, static_cast<Py_ssize_t>(n), "surrogateescape");
    if (!s) return nullptr;
    Py_XDECREF(last_path);
    last_path = s;
    Py_INCREF(s);
    last_path_bytes.assign(p, n);
    return s;
  }

  // A new Mapping from a header and its counters; NULL with an exception set.
  PyObject* make(const Head& h, const uint64_t* vals) {
    PyObject* obj = g_type->tp_alloc(g_type, 0);
    if (!obj) return nullptr;
    PyObject* v[kFields] = {
        PyLong_FromUnsignedLongLong(h.start), PyLong_FromUnsignedLongLong(h.end),
        perms.get(h.perms, h.perms_n), PyLong_FromUnsignedLongLong(h.offset),
        dev.get(h.dev, h.dev_n), PyLong_FromUnsignedLongLong(h.inode), path(h.path, h.path_n)};
    for (int i = 0; i < kCounters; ++i) v[kHead + i] = PyLong_FromUnsignedLongLong(vals[i]);
    bool ok = true;
    for (int i = 0; i < kFields; ++i) {
      if (!v[i]) ok = false;
      set_slot(obj, i, v[i]);  // a NULL slot is fine for the dealloc below
    }
    if (!ok) {
      Py_DECREF(obj);
      return nullptr;
    }
    // Only ints and strs inside, never changed (frozen): it cannot be part of a cycle.
    PyObject_GC_UnTrack(obj);
    return obj;
  }
};

// Value of "Key:   123 kB" after the colon, in [p, e); false unless exactly that shape.
bool parse_kb(const char* p, const char* e, uint64_t* out) {
  if (e - p < 4 || memcmp(e - 3, " kB", 3) != 0) return false;
  e -= 3;
  while (p < e && *p == ' ') ++p;
  while (e > p && e[-1] == ' ') --e;
  return parse_dec(p, e, out);
}

PyObject* py_init(PyObject*, PyObject* args) {
  PyObject *cls, *names;
  if (!PyArg_ParseTuple(args, "O!O!", &PyType_Type, &cls, &PyTuple_Type, &names)) return nullptr;
  if (PyTuple_GET_SIZE(names) != kFields) {
    PyErr_SetString(PyExc_ValueError, "Mapping must have 19 fields");
    return nullptr;
  }
  auto* type = reinterpret_cast<PyTypeObject*>(cls);
  for (int i = 0; i < kFields; ++i) {
    PyObject* d = PyDict_GetItemWithError(type->tp_dict, PyTuple_GET_ITEM(names, i));  // borrowed
    if (!d || Py_TYPE(d) != &PyMemberDescr_Type) {
      if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "Mapping fields must be slots");
      return nullptr;
    }
    PyMemberDef* m = reinterpret_cast<PyMemberDescrObject*>(d)->d_member;
    if (m->type != T_OBJECT_EX) {
      PyErr_SetString(PyExc_TypeError, "Mapping slots must be object slots");
      return nullptr;
    }
    g_offset[i] = m->offset;
  }
  Py_INCREF(cls);
  Py_XSETREF(g_type, type);
  if (!g_empty) g_empty = PyUnicode_FromStringAndSize("", 0);
  Py_RETURN_NONE;
}

// The line loop of maps.py's _parse_smaps_lines, on bytes. Returns 1 ok, 0 bail (not the
// kernel's layout), -1 error set.
int parse_lines(Parser& ps, const char* p, const char* end, PyObject* out) {
  uint64_t vals[kCounters] = {};
  Head head;
  bool have_head = false;
  while (p < end) {
    const char* nl = static_cast<const char*>(memchr(p, '\n', end - p));
    const char* e = nl ? nl : end;
    const char* colon = static_cast<const char*>(memchr(p, ':', e - p));
    const char* key_end = colon ? colon : e;
    int idx = counter_index(p, key_end - p);
    if (idx >= 0) {
      if (!colon || !parse_kb(colon + 1, e, &vals[idx])) return 0;
    } else if (colon) {
      const char* sp = static_cast<const char*>(memchr(p, ' ', key_end - p));
      if (sp && memchr(p, '-', sp - p)) {  // a header line
        if (have_head) {
          PyObject* m = ps.make(head, vals);
          if (!m || PyList_Append(out, m) < 0) {
            Py_XDECREF(m);
            return -1;
          }
          Py_DECREF(m);
          memset(vals, 0, sizeof vals);
        }
        if (!parse_head(p, e, &head)) return 0;
        have_head = true;
      }
    }
    p = nl ? nl + 1 : end;
  }
  if (have_head) {
    PyObject* m = ps.make(head, vals);
    if (!m || PyList_Append(out, m) < 0) {
      Py_XDECREF(m);
      return -1;
    }
    Py_DECREF(m);
  }
  return 1;
}

PyObject* py_parse(PyObject*, PyObject* arg) {
  if (!g_type) {
    PyErr_SetString(PyExc_RuntimeError, "_smaps.init() was not called");
    return nullptr;
  }
  Py_buffer view;
  if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return nullptr;
  const char* p = static_cast<const char*>(view.buf);
  PyObject* out = PyList_New(0);
  int rc = -1;
  if (out) {
    Parser ps;
    rc = parse_lines(ps, p, p + view.len, out);
  }
  PyBuffer_Release(&view);
  if (rc <= 0) {
    Py_XDECREF(out);
    if (rc == 0) Py_RETURN_NONE;
    return nullptr;
  }
  PyObject* t = PyList_AsTuple(out);
  Py_DECREF(out);
  return t;
}

// x right-aligned in width columns (Python's f"{x:>9}"), or zero-padded hex (f"{x:016x}").
void append_num(std::string& s, unsigned long long x, int width, bool hex) {
  char tmp[24];
  int i = 24;
  do {
    tmp[--i] = hex ? "0123456789abcdef"[x & 15] : static_cast<char>('0' + x % 10);
    x = hex ? x >> 4 : x / 10;
  } while (x);
  for (int pad = width - (24 - i); pad > 0; --pad) s += hex ? '0' : ' ';
  s.append(tmp + i, static_cast<size_t>(24 - i));
}

bool append_uint(std::string& s, PyObject* v, int width, bool hex) {
  if (!PyLong_CheckExact(v)) return false;
  unsigned long long x = PyLong_AsUnsignedLongLong(v);
  if (x == static_cast<unsigned long long>(-1) && PyErr_Occurred()) {  // negative or too big
    PyErr_Clear();
    return false;
  }
  append_num(s, x, width, hex);
  return true;
}

// Flush the ASCII buffer as one str into parts; false on error.
bool flush(std::string& s, PyObject* parts) {
  if (s.empty()) return true;
  PyObject* chunk = PyUnicode_DecodeASCII(s.data(), static_cast<Py_ssize_t>(s.size()), "strict");
  if (!chunk) return false;
  int rc = PyList_Append(parts, chunk);
  Py_DECREF(chunk);
  s.clear();
  return rc == 0;
}

// One row; 1 ok, 0 bail (not a plain Mapping of ints and ASCII perms), -1 error.
int format_row(PyObject* m, std::string& s, PyObject* parts) {
  if (Py_TYPE(m) != g_type) return 0;
  PyObject* perms = get_slot(m, 2);
  PyObject* path = get_slot(m, 6);
  if (!perms || !path || !PyUnicode_CheckExact(perms) || !PyUnicode_CheckExact(path) || !PyUnicode_IS_ASCII(perms))
    return 0;
  PyObject *shared_dirty = get_slot(m, kHead + 4), *private_dirty = get_slot(m, kHead + 6);
  if (!shared_dirty || !private_dirty || !PyLong_CheckExact(shared_dirty) || !PyLong_CheckExact(private_dirty))
    return 0;
  unsigned long long sd = PyLong_AsUnsignedLongLong(shared_dirty), pd = PyLong_AsUnsignedLongLong(private_dirty);
  if (PyErr_Occurred()) {
    PyErr_Clear();
    return 0;
  }
  PyObject* start = get_slot(m, 0);
  PyObject* size = get_slot(m, kHead + 0);
  PyObject* rss = get_slot(m, kHead + 1);
  PyObject* swap = get_slot(m, kHead + 10);
  if (!start || !size || !rss || !swap) return 0;
  if (!append_uint(s, start, 16, true)) return 0;
  s += ' ';
  if (!append_uint(s, size, 9, false)) return 0;
  s += ' ';
  if (!append_uint(s, rss, 9, false)) return 0;
  s += ' ';
  append_num(s, sd + pd, 9, false);
  s += ' ';
  if (!append_uint(s, swap, 7, false)) return 0;
  // mode: rwx, then 's' for shared, then '-', padded to 5 (Mapping.mode)
  const char* pr = reinterpret_cast<const char*>(PyUnicode_DATA(perms));
  Py_ssize_t pn = PyUnicode_GET_LENGTH(perms);
  s += ' ';
  s.append(pr, static_cast<size_t>(pn < 3 ? pn : 3));
  s += (pn >= 4 && pr[3] == 's') ? 's' : '-';
  s += '-';
  for (Py_ssize_t i = (pn < 3 ? pn : 3) + 2; i < 5; ++i) s += ' ';
  s += "  ";
  // name: basename for files ("/" for a path ending in '/'), "[ stack ]", else "[ anon ]" (Mapping.name)
  Py_ssize_t len = PyUnicode_GET_LENGTH(path);
  Py_ssize_t slash = len ? PyUnicode_FindChar(path, '/', 0, len, -1) : -1;
  if (slash == -2) return -1;
  if (slash < 0) {
    bool stack = PyUnicode_CompareWithASCIIString(path, "[stack]") == 0;
    s += stack ? "[ stack ]" : "[ anon ]";
  } else if (slash == len - 1) {
    s += '/';
  } else if (PyUnicode_IS_ASCII(path)) {
    s.append(reinterpret_cast<const char*>(PyUnicode_DATA(path)) + slash + 1, static_cast<size_t>(len - slash - 1));
  } else {  // not ASCII: hand the name over as its own str
    PyObject* name = PyUnicode_Substring(path, slash + 1, len);
    if (!name || !flush(s, parts) || PyList_Append(parts, name) < 0) {
      Py_XDECREF(name);
      return -1;
    }
    Py_DECREF(name);
  }
  s += '\n';
  return 1;
}

PyObject* py_format_rows(PyObject*, PyObject* arg) {
  if (!g_type || !PyTuple_Check(arg)) Py_RETURN_NONE;
  PyObject* parts = PyList_New(0);
  if (!parts) return nullptr;
  std::string s;
  Py_ssize_t n = PyTuple_GET_SIZE(arg);
  s.reserve(static_cast<size_t>(n) * 72);
  for (Py_ssize_t i = 0; i < n; ++i) {
    int rc = format_row(PyTuple_GET_ITEM(arg, i), s, parts);
    if (rc <= 0) {
      Py_DECREF(parts);
      if (rc == 0) Py_RETURN_NONE;
      return nullptr;
    }
  }
  if (!flush(s, parts)) {
    Py_DECREF(parts);
    return nullptr;
  }
  PyObject* empty = PyUnicode_FromStringAndSize("", 0);
  PyObject* text = empty ? PyUnicode_Join(empty, parts) : nullptr;
  Py_XDECREF(empty);
  Py_DECREF(parts);
  return text;
}

PyMethodDef methods[] = {
    {"init", py_init, METH_VARARGS, "init(Mapping, field_names): learn where Mapping keeps each field."},
    {"parse", py_parse, METH_O, "parse(smaps_bytes) -> tuple of Mapping, or None when not the kernel's layout."},
    {"format_rows", py_format_rows, METH_O, "format_rows(mappings) -> the pmap -x rows as str, or None."},
    {nullptr, nullptr, 0, nullptr}};

PyModuleDef module = {PyModuleDef_HEAD_INIT, "_smaps", "smaps parser and pmap -x rows, native.", -1, methods,
                      nullptr, nullptr, nullptr, nullptr};

}  // namespace

PyMODINIT_FUNC PyInit__smaps(void) { return PyModule_Create(&module); }
