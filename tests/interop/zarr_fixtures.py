"""Zarr interop fixtures for chunkflow, both ways, with zarr-python.

    python zarr_fixtures.py write DIR    # zarr-python writes stores + DIR/manifest.json
    python zarr_fixtures.py verify DIR   # zarr-python reads what chunkflow wrote (DIR/manifest.json)

The manifest (the same schema both ways) lists every array with its metadata and its full
values (flattened in C order; NaN as null; floats are dyadic so JSON holds them exactly), and
every group with its attributes and children. `verify` exits non-zero on the first mismatch.
"""

import json
import math
import sys
from pathlib import Path

import numcodecs
import numpy as np
import zarr
from zarr.codecs import BloscCodec, GzipCodec, ZstdCodec


# ----------------------------------------------------------------------------------------------
# Test data
# ----------------------------------------------------------------------------------------------

def values(dtype, shape):
    """Deterministic values covering each dtype's range edges (exactly representable in JSON)."""
    n = int(np.prod(shape))
    i = np.arange(n)
    dt = np.dtype(dtype)
    if dt == np.bool_:
        a = (i % 3) == 1
    elif dt.kind == "f":
        a = (i * 0.125 - 3.0).astype(dt)
    else:
        info = np.iinfo(dt)
        a = (i * 7 + 3) % 100
        a = a.astype(dt)
        if n >= 2:
            a[0] = info.min
            a[-1] = info.max
    return a.reshape(shape)


def to_json_values(a):
    out = []
    for x in np.asarray(a).ravel().tolist():
        if isinstance(x, float) and math.isnan(x):
            out.append(None)
        else:
            out.append(x)
    return out


def stored_fill(arr):
    """The fill value zarr-python recorded for `arr`, in the manifest's form."""
    fill = arr.metadata.fill_value
    return json_fill(None if fill is None else np.asarray(fill).item())


def json_fill(fill):
    if fill is None:
        return None
    if isinstance(fill, float) and math.isnan(fill):
        return "NaN"
    return fill


# ----------------------------------------------------------------------------------------------
# write: zarr-python writes, chunkflow reads
# ----------------------------------------------------------------------------------------------

def blosc_v2(cname, clevel, shuffle):
    return numcodecs.Blosc(cname=cname, clevel=clevel, shuffle=shuffle)


# (name, format, dtype, shape, chunks, shards, compressor, compression manifest, fill,
#  separator, dimension names, unwritten region)
CASES = [
    ("v2_blosc_lz4_dot", 2, "float32", (6, 4, 5), (2, 2, 5), None,
     blosc_v2("lz4", 5, numcodecs.Blosc.SHUFFLE),
     {"id": "blosc", "cname": "lz4", "clevel": 5, "shuffle": 1},
     float("nan"), ".", ["time", "lat", "lon"], (slice(4, 6), slice(0, 2), slice(0, 5))),
    ("v2_blosc_zstd_slash", 2, "int16", (5, 7), (2, 3), None,
     blosc_v2("zstd", 3, numcodecs.Blosc.BITSHUFFLE),
     {"id": "blosc", "cname": "zstd", "clevel": 3, "shuffle": 2},
     -1, "/", ["y", "x"], None),
    ("v2_gzip", 2, "uint8", (10,), (4,), None, numcodecs.GZip(level=5),
     {"id": "gzip", "level": 5}, 0, ".", None, None),
    ("v2_zstd", 2, "uint32", (9, 2), (4, 2), None, numcodecs.Zstd(level=2),
     {"id": "zstd", "level": 2}, 0, ".", None, None),
    ("v2_none_null_fill", 2, "int64", (3, 4), (2, 2), None, None, {"id": "none"},
     None, ".", ["a", "b"], (slice(2, 3), slice(2, 4))),
    ("v2_bool", 2, "bool", (4, 3), (3, 3), None, None, {"id": "none"}, False, ".", None, None),
    ("v3_zstd", 3, "float64", (5, 6), (2, 4), None, ZstdCodec(level=0),
     {"id": "zstd", "level": 0}, float("nan"), None, ["t", "x"], (slice(4, 5), slice(4, 6))),
    ("v3_gzip", 3, "uint16", (7,), (3,), None, GzipCodec(level=6), {"id": "gzip", "level": 6},
     7, None, ["x"], None),
    ("v3_blosc", 3, "int32", (4, 4), (3, 3), None,
     BloscCodec(cname="lz4", clevel=5, shuffle="shuffle"),
     {"id": "blosc", "cname": "lz4", "clevel": 5, "shuffle": 1}, 0, None, None, None),
    ("v3_sharded", 3, "float32", (8, 10), (2, 5), (4, 10), ZstdCodec(level=3),
     {"id": "zstd", "level": 3}, 0.0, None, ["y", "x"], None),
    ("v3_none", 3, "bool", (5, 5), (2, 2), None, None, {"id": "none"}, False, None, None, None),
    ("v3_int8", 3, "int8", (6,), (4,), None, None, {"id": "none"}, 0, None, None, None),
    ("v3_uint64", 3, "uint64", (5,), (2,), None, ZstdCodec(level=1), {"id": "zstd", "level": 1},
     0, None, None, None),
]


def write_case(root, case):
    (name, fmt, dtype, shape, chunks, shards, compressor, compression, fill, sep, dims,
     unwritten) = case
    store = str(root / f"{name}.zarr")
    attributes = {"description": f"fixture {name}", "answer": 42}
    kwargs = dict(
        store=store, name="data", shape=shape, chunks=chunks, dtype=dtype, zarr_format=fmt,
        fill_value=fill, overwrite=True,
        compressors=None if compressor is None else compressor,
    )
    if fmt == 2:
        kwargs["chunk_key_encoding"] = {"name": "v2", "separator": sep}
        attrs = dict(attributes)
        if dims is not None:
            attrs["_ARRAY_DIMENSIONS"] = dims
        kwargs["attributes"] = attrs
    else:
        kwargs["attributes"] = attributes
        if dims is not None:
            kwargs["dimension_names"] = dims
        if shards is not None:
            kwargs["shards"] = shards
    arr = zarr.create_array(**kwargs)
    data = values(dtype, shape)
    if unwritten is None:
        arr[...] = data
        expected = data
    else:
        # Write every chunk except those in `unwritten` (chunk-aligned), which read as fill.
        mask = np.zeros(shape, dtype=bool)
        mask[unwritten] = True
        expected = data.copy()
        expected[mask] = fill if fill is not None else 0
        grid = [range(0, s, c) for s, c in zip(shape, chunks)]
        for origin in np.ndindex(*[len(g) for g in grid]):
            sl = tuple(slice(g[o], min(g[o] + c, s))
                       for g, o, c, s in zip(grid, origin, chunks, shape))
            if not mask[sl].all():
                arr[sl] = data[sl]
    return {
        "store": f"{name}.zarr", "path": "data", "format": fmt, "dtype": dtype,
        "shape": list(shape), "chunks": list(chunks),
        "shards": None if shards is None else list(shards),
        "fill_value": json_fill(fill), "dimension_names": dims, "attributes": attributes,
        "compression": compression, "values": to_json_values(expected),
    }


def write_group(root, fmt):
    name = f"group_v{fmt}_consolidated.zarr"
    store = str(root / name)
    g = zarr.open_group(store, mode="w", zarr_format=fmt,
                        attributes={"title": "interop sample", "Conventions": "CF-1.8"})
    arrays = []
    specs = [("t2m", "float32", (6, 4), (2, 4)), ("time", "int64", (6,), (6,)),
             ("mask", "bool", (6, 4), (3, 2))]
    for aname, dtype, shape, chunks in specs:
        kw = {}
        attrs = {"long_name": aname}
        dims = ["time", "lat"][: len(shape)]
        if fmt == 2:
            attrs["_ARRAY_DIMENSIONS"] = dims
        else:
            kw["dimension_names"] = dims
        a = g.create_array(aname, shape=shape, chunks=chunks, dtype=dtype, attributes=attrs, **kw)
        a[...] = values(dtype, shape)
        arrays.append({
            "store": name, "path": aname, "format": fmt, "dtype": dtype, "shape": list(shape),
            "chunks": list(chunks), "shards": None, "fill_value": stored_fill(a),
            "dimension_names": dims,
            "attributes": {"long_name": aname}, "compression": None,
            "values": to_json_values(values(dtype, shape)),
        })
    sub = g.create_group("sub", attributes={"level": 1})
    x = sub.create_array("x", shape=(3,), chunks=(2,), dtype="uint16")
    x[...] = values("uint16", (3,))
    arrays.append({
        "store": name, "path": "sub/x", "format": fmt, "dtype": "uint16", "shape": [3],
        "chunks": [2], "shards": None, "fill_value": stored_fill(x), "dimension_names": None,
        "attributes": {}, "compression": None, "values": to_json_values(values("uint16", (3,))),
    })
    zarr.consolidate_metadata(store)
    groups = [
        {"store": name, "path": "", "format": fmt,
         "attributes": {"title": "interop sample", "Conventions": "CF-1.8"},
         "arrays": ["mask", "t2m", "time"], "groups": ["sub"], "consolidated": True},
        {"store": name, "path": "sub", "format": fmt, "attributes": {"level": 1},
         "arrays": ["x"], "groups": [], "consolidated": False},
    ]
    return arrays, groups


def cmd_write(root):
    root.mkdir(parents=True, exist_ok=True)
    arrays = [write_case(root, case) for case in CASES]
    groups = []
    for fmt in (2, 3):
        a, g = write_group(root, fmt)
        arrays += a
        groups += g
    manifest = {"writer": f"zarr-python {zarr.__version__}", "arrays": arrays, "groups": groups}
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1, allow_nan=False))
    print(f"wrote {len(arrays)} arrays and {len(groups)} groups into {root}")


# ----------------------------------------------------------------------------------------------
# verify: chunkflow wrote, zarr-python reads
# ----------------------------------------------------------------------------------------------

class Mismatch(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Mismatch(what)


def describe_compressors(arr):
    """The compression of `arr` in the manifest's form."""
    comps = list(arr.compressors)
    if not comps:
        return {"id": "none"}
    check(len(comps) == 1, f"expected one compressor, got {comps}")
    c = comps[0]
    if isinstance(c, numcodecs.Blosc):
        return {"id": "blosc", "cname": c.cname, "clevel": c.clevel, "shuffle": c.shuffle}
    if isinstance(c, BloscCodec):
        shuffle = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}[c.shuffle.value]
        return {"id": "blosc", "cname": c.cname.value, "clevel": c.clevel, "shuffle": shuffle}
    if isinstance(c, numcodecs.Zstd):
        return {"id": "zstd", "level": c.level}
    if isinstance(c, ZstdCodec):
        return {"id": "zstd", "level": c.level}
    if isinstance(c, numcodecs.GZip):
        return {"id": "gzip", "level": c.level}
    if isinstance(c, GzipCodec):
        return {"id": "gzip", "level": c.level}
    raise Mismatch(f"unexpected compressor {c!r}")


def verify_array(root, entry):
    where = f"{entry['store']}/{entry['path']}"
    arr = zarr.open_array(str(root / entry["store"]), path=entry["path"], mode="r")
    check(arr.metadata.zarr_format == entry["format"], f"{where}: format {arr.metadata.zarr_format}")
    check(list(arr.shape) == entry["shape"], f"{where}: shape {arr.shape}")
    check(list(arr.chunks) == entry["chunks"], f"{where}: chunks {arr.chunks}")
    shards = None if arr.shards is None else list(arr.shards)
    check(shards == entry["shards"], f"{where}: shards {arr.shards}")
    check(arr.dtype == np.dtype(entry["dtype"]), f"{where}: dtype {arr.dtype}")
    fill = arr.metadata.fill_value
    expected_fill = entry["fill_value"]
    if expected_fill == "NaN":
        check(fill is not None and math.isnan(float(fill)), f"{where}: fill {fill!r}")
    elif expected_fill is None:
        check(fill is None or not fill, f"{where}: fill {fill!r}")
    else:
        check(fill == expected_fill, f"{where}: fill {fill!r} != {expected_fill!r}")
    attrs = dict(arr.attrs)
    if entry["format"] == 2:
        dims = attrs.pop("_ARRAY_DIMENSIONS", None)
    else:
        dims = arr.metadata.dimension_names
        dims = None if dims is None else list(dims)
    check(dims == entry["dimension_names"], f"{where}: dimension names {dims}")
    check(attrs == entry["attributes"], f"{where}: attributes {attrs}")
    check("_zarrs" not in attrs, f"{where}: zarrs attribute leaked")
    if entry["compression"] is not None:
        got = describe_compressors(arr)
        check(got == entry["compression"], f"{where}: compression {got} != {entry['compression']}")
    data = arr[...]
    expected = np.array(
        [np.nan if v is None else v for v in entry["values"]], dtype=entry["dtype"]
    ).reshape(entry["shape"])
    check(np.array_equal(data, expected, equal_nan=data.dtype.kind == "f"),
          f"{where}: values differ:\n{data}\nexpected\n{expected}")


def verify_group(root, entry):
    where = f"{entry['store']}/{entry['path']}"
    g = zarr.open_group(str(root / entry["store"]), path=entry["path"], mode="r",
                        use_consolidated=entry["consolidated"] or None)
    check(dict(g.attrs) == entry["attributes"], f"{where}: attributes {dict(g.attrs)}")
    check(sorted(g.array_keys()) == entry["arrays"], f"{where}: arrays {sorted(g.array_keys())}")
    check(sorted(g.group_keys()) == entry["groups"], f"{where}: groups {sorted(g.group_keys())}")
    if entry["consolidated"]:
        check(g.metadata.consolidated_metadata is not None, f"{where}: not consolidated")


def cmd_verify(root):
    manifest = json.loads((root / "manifest.json").read_text())
    arrays, groups = manifest["arrays"], manifest["groups"]
    check(arrays, "the manifest lists no arrays")
    for entry in arrays:
        verify_array(root, entry)
    for entry in groups:
        verify_group(root, entry)
    print(f"zarr-python {zarr.__version__} read {len(arrays)} arrays and {len(groups)} groups "
          f"written by {manifest.get('writer', '?')}: all match")


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("write", "verify"):
        sys.exit(__doc__)
    root = Path(sys.argv[2])
    try:
        {"write": cmd_write, "verify": cmd_verify}[sys.argv[1]](root)
    except Mismatch as e:
        print(f"MISMATCH: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
