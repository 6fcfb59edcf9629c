#!/usr/bin/env python3
"""Independent GGUF v2/v3 parser (plain Python 3, struct only): the test oracle for `ember inspect --json`.

Usage: gguf_dump.py FILE  -> one JSON object on stdout:
  {"version", "alignment", "file_size", "data_offset", "metadata": [{"key", "type", "value"
   [, "element_type", "count"]}], "tensors": [{"name", "type_id", "shape", "offset"}]}
Tensor "offset" is absolute in the file (data section start + relative offset). Floats that are
NaN or infinite are written as the strings "NaN", "Infinity", "-Infinity" (valid JSON), the way
ember does. Nothing here is shared with ember's C++ reader on purpose.
"""
import json
import math
import struct
import sys

# gguf_type ids -> (name, struct code or None for string/array)
TYPES = {
    0: ("uint8", "B"), 1: ("int8", "b"), 2: ("uint16", "H"), 3: ("int16", "h"),
    4: ("uint32", "I"), 5: ("int32", "i"), 6: ("float32", "f"), 7: ("bool", "?"),
    8: ("string", None), 9: ("array", None), 10: ("uint64", "Q"), 11: ("int64", "q"),
    12: ("float64", "d"),
}
STRING, ARRAY = 8, 9


class Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def unpack(self, fmt):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise ValueError(f"truncated at offset {self.pos}")
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += size
        return values

    def u32(self):
        return self.unpack("I")[0]

    def u64(self):
        return self.unpack("Q")[0]

    def string(self):
        n = self.u64()
        if self.pos + n > len(self.data):
            raise ValueError(f"truncated string at offset {self.pos}")
        raw = self.data[self.pos:self.pos + n]
        self.pos += n
        return raw.decode("utf-8", errors="replace")


def json_float(x):
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return x


def read_array(r):
    elem_type = r.u32()
    count = r.u64()
    if elem_type not in TYPES:
        raise ValueError(f"unknown array element type {elem_type}")
    if elem_type == STRING:
        items = [r.string() for _ in range(count)]
    elif elem_type == ARRAY:
        items = [read_array(r)[2] for _ in range(count)]
    else:
        code = TYPES[elem_type][1]
        items = list(r.unpack(f"{count}{code}"))
        if code in "fd":
            items = [json_float(x) for x in items]
    return elem_type, count, items


def read_value(r, type_id):
    if type_id not in TYPES:
        raise ValueError(f"unknown value type {type_id}")
    if type_id == STRING:
        return r.string()
    code = TYPES[type_id][1]
    value = r.unpack(code)[0]
    return json_float(value) if code in "fd" else value


def dump(path):
    with open(path, "rb") as f:
        data = f.read()
    r = Reader(data)
    magic, version = r.unpack("4sI")
    if magic != b"GGUF":
        raise ValueError("bad magic")
    if version not in (2, 3):
        raise ValueError(f"unsupported version {version}")
    n_tensors, n_kv = r.unpack("QQ")

    metadata = []
    alignment = 32
    for _ in range(n_kv):
        key = r.string()
        type_id = r.u32()
        entry = {"key": key, "type": TYPES.get(type_id, ("invalid",))[0]}
        if type_id == ARRAY:
            elem_type, count, items = read_array(r)
            entry.update(element_type=TYPES[elem_type][0], count=count, value=items)
        else:
            entry["value"] = read_value(r, type_id)
        if key == "general.alignment" and type_id == 4:
            alignment = entry["value"]
        metadata.append(entry)

    infos = []
    for _ in range(n_tensors):
        name = r.string()
        n_dims = r.u32()
        shape = list(r.unpack(f"{n_dims}Q"))
        type_id = r.u32()
        rel_offset = r.u64()
        infos.append((name, type_id, shape, rel_offset))

    data_offset = -(-r.pos // alignment) * alignment
    tensors = [{"name": n, "type_id": t, "shape": s, "offset": data_offset + o} for n, t, s, o in infos]
    return {
        "version": version,
        "alignment": alignment,
        "file_size": len(data),
        "data_offset": data_offset,
        "metadata": metadata,
        "tensors": tensors,
    }


def main():
    if len(sys.argv) != 2:
        print("usage: gguf_dump.py FILE", file=sys.stderr)
        return 2
    try:
        result = dump(sys.argv[1])
    except (OSError, ValueError, struct.error) as e:
        print(f"gguf_dump: {sys.argv[1]}: {e}", file=sys.stderr)
        return 1
    json.dump(result, sys.stdout, allow_nan=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
