"""xarray interop fixtures for chunkflow's dataset room.

    python xarray_fixtures.py write DIR            # xarray writes Zarr stores + DIR/manifest.json
    python xarray_fixtures.py xpartition-init DIR  # xpartition initializes stores (after write)
    python xarray_fixtures.py check-writes DIR     # xarray checks the stores chunkflow wrote

Each case in the manifest names a store (and group) written by xarray, how to open it
(chunks, decode, consolidated) and what xarray itself reads back when opening it that way:
dimensions in order, coordinates (index and auxiliary), data variables, attributes, and per
variable its dims, decoded dtype, attributes, encoding (dtype, _FillValue, scale_factor,
add_offset, units, calendar, coordinates, chunks), dask chunks and every value (floats as
JSON numbers, NaN as null; datetimes as int64 nanoseconds and ISO strings). A case may
instead expect an error (a group without xarray metadata). The Rust test
tests/dataset_open.rs opens each case with chunkflow and compares.

The other direction: `xpartition-init` has xpartition (`ds.partition.initialize_store`)
initialize stores from some fixtures (DIR/xpartition.json lists them); the ignored Rust test
tests/dataset_write.rs::xarray_writes then writes stores with chunkflow (fixtures opened and
written back in v2 and v3, datasets built in Rust, partitioned writes by ranks, and the
xpartition stores filled by ranks) and lists them in DIR/written/cases.json; `check-writes`
opens each with xarray, warnings turned into errors, and requires
`xr.testing.assert_identical` against xarray's own reading of the source (or the values the
Rust test recorded), the source's encoding kept, and, for same-format round trips, the
metadata documents xarray wrote.
"""

import json
import math
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
import zarr
from xarray.coding.times import _cleanup_netcdf_time_units

# ----------------------------------------------------------------------------------------------
# The datasets
# ----------------------------------------------------------------------------------------------


def base_dataset():
    """The climate-like sample of the design notes: time=6, lat=4, lon=5."""
    rng = np.random.default_rng(20260901)
    time = pd.date_range("2000-01-01", periods=6, freq="6h")
    lat = np.array([-67.5, -22.5, 22.5, 67.5])
    lon = np.array([0.0, 72.0, 144.0, 216.0, 288.0])
    t2m = (280.0 + 10.0 * rng.standard_normal((6, 4, 5))).astype("float32")
    t2m[0, 0, 0] = np.nan
    precip = rng.gamma(2.0, 1.5, (6, 4, 5)).astype("float32")
    cell_area = (np.cos(np.deg2rad(lat))[:, None] * np.linspace(1.0, 2.0, 5)).astype("float32")
    ds = xr.Dataset(
        {
            "t2m": (("time", "lat", "lon"), t2m, {"units": "K", "long_name": "2 metre temperature"}),
            "precip": (("time", "lat", "lon"), precip, {"units": "mm", "long_name": "precipitation"}),
        },
        coords={
            "time": time,
            "lat": ("lat", lat, {"units": "degrees_north"}),
            "lon": ("lon", lon, {"units": "degrees_east"}),
            "cell_area": (("lat", "lon"), cell_area, {"units": "m2"}),
        },
        attrs={"title": "interop sample", "Conventions": "CF-1.8", "version": 3},
    )
    return ds.chunk({"time": 2, "lat": 2, "lon": 5})


def packed_dataset():
    """CF packing and fill values: int16 with scale/offset/_FillValue, masked ints and floats,
    an int without a fill value, int32 times in the standard calendar."""
    ds = base_dataset()
    rng = np.random.default_rng(7)
    count = rng.integers(0, 50, (6, 4, 5)).astype("float64")
    count[1, 2, 3] = np.nan
    sst = (290.0 + rng.standard_normal((6, 4, 5))).astype("float32")
    sst[2, :, 0] = np.nan
    flag = rng.integers(-5, 5, (6, 4, 5)).astype("int8")
    ds["count"] = (("time", "lat", "lon"), count, {"long_name": "observation count"})
    ds["sst"] = (("time", "lat", "lon"), sst, {"units": "K"})
    ds["flag"] = (("time", "lat", "lon"), flag)
    ds = ds.drop_vars("precip").chunk({"time": 2, "lat": 2, "lon": 5})
    encoding = {
        "t2m": {"dtype": "int16", "scale_factor": 0.01, "add_offset": 280.0, "_FillValue": -32768},
        "time": {"units": "hours since 2000-01-01", "calendar": "standard", "dtype": "int32"},
        "count": {"dtype": "int32", "_FillValue": -1},
        "sst": {"_FillValue": -9999.0},
    }
    return ds, encoding


def noleap_dataset():
    """Times in a calendar only cftime decodes (written as raw numbers with their attrs), and a
    string variable."""
    ds = xr.Dataset(
        {
            "tas": (("time", "x"), np.arange(12.0).reshape(4, 3), {"units": "K"}),
            # Strings: chunkflow skips the variable with a warning.
            "label": ("x", np.array(["a", "bb", "ccc"])),
        },
        coords={
            "time": ("time", np.array([0, 31, 59, 90], dtype="int64"),
                     {"units": "days since 2001-01-01", "calendar": "noleap"}),
            "x": ("x", np.array([10, 20, 30], dtype="int32")),
        },
    )
    return ds.chunk({"time": 2})


# ----------------------------------------------------------------------------------------------
# Describing what xarray reads
# ----------------------------------------------------------------------------------------------


def jsonable(v):
    """Attribute / encoding values as JSON (NaN as the string "NaN")."""
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return jsonable(v.tolist())
    if isinstance(v, np.generic):
        return jsonable(v.item())
    if isinstance(v, float) and math.isnan(v):
        return "NaN"
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    return str(v)


ENCODING_KEYS = ["dtype", "_FillValue", "missing_value", "scale_factor", "add_offset", "units",
                 "calendar", "coordinates", "chunks"]


def values_of(var):
    values = np.asarray(var.values)
    if values.dtype.kind == "M":
        ns = values.astype("datetime64[ns]")
        return {
            "values_ns": ns.astype("int64").ravel().tolist(),
            "values_iso": [str(s) for s in np.datetime_as_string(ns.ravel(), unit="s")],
        }
    flat = values.ravel()
    out = {"values": [None if (isinstance(x, float) and math.isnan(x)) else x
                      for x in flat.tolist()]}
    if values.dtype.kind in "fiub":
        as_float = flat.astype("float64")
        out["nan_count"] = int(np.isnan(as_float).sum())
        out["mean"] = float(np.nanmean(as_float)) if out["nan_count"] < flat.size else None
    return out


def describe(ds):
    out = {
        "dims": [[str(k), int(v)] for k, v in ds.sizes.items()],
        "variable_order": [str(k) for k in ds.variables],
        "coords": sorted(str(k) for k in ds.coords),
        "index_coords": sorted(str(k) for k in ds.coords if k in ds.dims),
        "data_vars": sorted(str(k) for k in ds.data_vars),
        "attrs": jsonable(dict(ds.attrs)),
        "variables": {},
    }
    for name, var in ds.variables.items():
        enc = {k: jsonable(var.encoding[k]) for k in ENCODING_KEYS if k in var.encoding}
        if "dtype" in enc:
            enc["dtype"] = str(np.dtype(var.encoding["dtype"]))
        rec = {
            "dims": [str(d) for d in var.dims],
            "dtype": str(var.dtype),
            "attrs": jsonable(dict(var.attrs)),
            "encoding": enc,
            "chunks": None if var.chunks is None else [list(c) for c in var.chunks],
        }
        rec.update(values_of(var))
        out["variables"][str(name)] = rec
    return out


def open_expected(path, group=None, **kwargs):
    """What xarray reads, loaded, with the warnings it raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = xr.open_zarr(path, group=group, **kwargs)
        desc = describe(ds)
    desc["xarray_warnings"] = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
    return desc


# ----------------------------------------------------------------------------------------------
# write
# ----------------------------------------------------------------------------------------------


def write(out):
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    cases = []

    def case(name, store, *, group=None, chunks=None, decode=True, consolidated=None, notes="",
             expect=None, xr_kwargs=None):
        kwargs = dict(xr_kwargs or {})
        if chunks is not None:
            kwargs["chunks"] = chunks
        if not decode:
            # chunkflow's decode=false: values and CF attributes as stored; the `coordinates`
            # attribute still marks coordinates (decode_coords stays on).
            kwargs["mask_and_scale"] = False
            kwargs["decode_times"] = False
        if consolidated is not None:
            kwargs["consolidated"] = consolidated
        rec = {
            "name": name,
            "store": store,
            "group": group or "",
            "open": {"chunks": chunks or {}, "decode": decode, "consolidated": consolidated},
            "notes": notes,
        }
        rec["expected"] = expect if expect is not None else open_expected(
            str(out / store), group=group, **kwargs)
        cases.append(rec)

    ds = base_dataset()
    # Index coords, auxiliary coords (cell_area via `coordinates`), NaN fill, default time
    # encoding (hours since ..., proleptic_gregorian, int64).
    for fmt in (2, 3):
        for consolidated in (True, False):
            store = f"base_v{fmt}_{'consolidated' if consolidated else 'plain'}.zarr"
            ds.to_zarr(out / store, zarr_format=fmt, consolidated=consolidated, mode="w")
            case(f"base_v{fmt}_{'consolidated' if consolidated else 'plain'}", store,
                 consolidated=None if consolidated else False)
    case("base_v3_chunks", "base_v3_consolidated.zarr", chunks={"time": 3, "lon": -1},
         notes="user chunks per dimension; unnamed dims keep the store's")
    case("base_v2_chunks", "base_v2_consolidated.zarr", chunks={"lat": 4})

    # CF packing and fill values, v2 and v3.
    packed, encoding = packed_dataset()
    for fmt in (2, 3):
        store = f"packed_v{fmt}.zarr"
        packed.to_zarr(out / store, zarr_format=fmt, encoding=encoding, mode="w")
        case(f"packed_v{fmt}", store)
        case(f"packed_v{fmt}_raw", store, decode=False,
             notes="decode off: stored dtypes and values")

    # Stale consolidated metadata: an array listed there was deleted afterwards.
    for fmt in (2, 3):
        store = f"stale_v{fmt}.zarr"
        ds.to_zarr(out / store, zarr_format=fmt, consolidated=True, mode="w")
        shutil.rmtree(out / store / "precip")
        case(f"stale_v{fmt}", store, consolidated=False,
             notes="consolidated metadata lists precip, which is gone: fall back to listing")

    # A dataset in a nested group.
    ds.to_zarr(out / "nested_v3.zarr", group="outer/inner", zarr_format=3, mode="w")
    case("nested_v3", "nested_v3.zarr", group="outer/inner")

    # Times in the noleap calendar: kept as numbers (xarray would need cftime).
    noleap = noleap_dataset()
    noleap.to_zarr(out / "noleap_v3.zarr", zarr_format=3, mode="w")
    case("noleap_v3", "noleap_v3.zarr", xr_kwargs={"decode_times": False},
         notes="expected = xarray with decode_times=False; chunkflow keeps the numbers and warns")

    # Groups without xarray metadata: plain zarr-python arrays.
    for fmt in (2, 3):
        store = f"plain_arrays_v{fmt}.zarr"
        group = zarr.open_group(str(out / store), mode="w", zarr_format=fmt)
        a = group.create_array("a", shape=(4, 3), chunks=(2, 3), dtype="float32")
        a[:] = np.arange(12, dtype="float32").reshape(4, 3)
        group.create_array("b", shape=(3,), chunks=(3,), dtype="int16")
        if fmt == 2:
            zarr.consolidate_metadata(str(out / store))
        try:
            xr.open_zarr(str(out / store))
            xarray_error = None
        except Exception as e:  # noqa: BLE001 - record whatever xarray says
            xarray_error = f"{type(e).__name__}: {e}"
        case(f"plain_arrays_v{fmt}", store,
             expect={"error": "no_dimension_names", "arrays": ["a", "b"],
                     "xarray_error": xarray_error})

    manifest = {
        "versions": {"xarray": xr.__version__, "zarr": zarr.__version__,
                     "numpy": np.__version__, "pandas": pd.__version__},
        "cases": cases,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, allow_nan=False))
    print(f"wrote {len(cases)} cases to {out}", file=sys.stderr)


# ----------------------------------------------------------------------------------------------
# xpartition-init: stores initialized by xpartition, for chunkflow ranks to fill
# ----------------------------------------------------------------------------------------------


def xpartition_init(out):
    import xpartition  # noqa: F401  (registers the .partition accessor)

    out = Path(out)
    (out / "xpartition").mkdir(exist_ok=True)
    cases = []
    variants = [
        ("base_v3_consolidated.zarr", 3, None),
        ("base_v2_consolidated.zarr", 2, None),
        ("packed_v3.zarr", 3, None),
        ("packed_v2.zarr", 2, None),
        # Sharded: shards = the dask chunks, inner chunks of one latitude.
        ("base_v3_consolidated.zarr", 3, {"time": 2, "lat": 1, "lon": 5}),
    ]
    for source, fmt, inner in variants:
        ds = xr.open_zarr(out / source)
        name = f"xp_{source.removesuffix('.zarr')}_v{fmt}{'_sharded' if inner else ''}.zarr"
        store = out / "xpartition" / name
        ds.partition.initialize_store(str(store), inner_chunks=inner, zarr_format=fmt)
        # Only metadata and the in-memory (index) coordinates: no chunk of a dask variable.
        assert not any(p.name[0].isdigit() or p.name == "c" for p in (store / "t2m").iterdir()), \
            f"{name}: xpartition wrote chunks of t2m at init"
        cases.append({"store": f"xpartition/{name}", "source": source, "format": f"v{fmt}",
                      "dims": ["time"], "ranks": 3, "sharded": inner is not None})
    doc = {"xpartition": xpartition.__version__, "cases": cases}
    (out / "xpartition.json").write_text(json.dumps(doc, indent=1))
    print(f"xpartition {xpartition.__version__} initialized {len(cases)} stores", file=sys.stderr)


# ----------------------------------------------------------------------------------------------
# check-writes: xarray opens what chunkflow wrote
# ----------------------------------------------------------------------------------------------

CHECKED_ENCODING = ["dtype", "_FillValue", "missing_value", "scale_factor", "add_offset",
                    "units", "calendar", "coordinates", "chunks", "shards"]


def same_value(a, b):
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, np.dtype) or isinstance(b, np.dtype):
        return np.dtype(a) == np.dtype(b)
    return jsonable(a) == jsonable(b)


def expected_from_values(path):
    """The dataset the Rust test built, from its JSON description."""
    doc = json.loads(Path(path).read_text())
    data_vars, coords = {}, {}
    for name in doc["order"]:
        v = doc["variables"][name]
        if v["dtype"] == "datetime64[ns]":
            arr = np.array(v["values"], dtype="int64").view("datetime64[ns]")
        elif v["dtype"] == "bool":
            arr = np.array(v["values"], dtype=bool)
        else:
            arr = np.array([np.nan if x is None else x for x in v["values"]], dtype="float64")
            arr = arr.astype(v["dtype"])
        var = xr.Variable(v["dims"], arr.reshape(v["shape"]), v["attrs"])
        (coords if v["coord"] else data_vars)[name] = var
    return xr.Dataset(data_vars, coords=coords, attrs=doc["attrs"])


def metadata_docs(root, group, fmt):
    """Every array's metadata (and the group's attributes) as xarray/zarr wrote them."""
    base = Path(root) / group if group else Path(root)
    docs = {}
    for child in sorted(p for p in base.iterdir() if p.is_dir()):
        if fmt == "v3" and (child / "zarr.json").exists():
            docs[child.name] = json.loads((child / "zarr.json").read_text())
        elif fmt == "v2" and (child / ".zarray").exists():
            docs[child.name] = {
                "zarray": json.loads((child / ".zarray").read_text()),
                "zattrs": json.loads((child / ".zattrs").read_text()),
            }
    if fmt == "v3":
        docs["/attributes"] = json.loads((base / "zarr.json").read_text())["attributes"]
    else:
        docs["/attributes"] = json.loads((base / ".zattrs").read_text())
    return docs


def check_one(out, case):
    kwargs = {} if case["consolidated"] else {"consolidated": False}
    group = case["group"] or None
    # chunkflow's stores must open without any warning (consolidated metadata present, or
    # asked not to be used; dimension names; fill values; CF attributes).
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = xr.open_zarr(out / case["store"], group=group, **kwargs)
        got.load()
    expect = case["expect"]
    if "values" in expect:
        xr.testing.assert_identical(got, expected_from_values(out / expect["values"]))
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = xr.open_zarr(out / expect["source"], group=expect["group"] or None)
        want.load()
    xr.testing.assert_identical(got, want)
    # The source's encoding is kept (time units compared as xarray cleans them up on write;
    # a sharded xpartition store has its own inner chunks).
    skip = {"chunks", "shards"} if case.get("sharded") else set()
    if case.get("format") == "v2":
        skip.add("shards")
    for name, var in want.variables.items():
        for key in CHECKED_ENCODING:
            if key in skip or key not in var.encoding:
                continue
            ours, theirs = got[name].encoding.get(key), var.encoding[key]
            if key == "units" and isinstance(ours, str) and isinstance(theirs, str):
                ours, theirs = _cleanup_netcdf_time_units(ours), _cleanup_netcdf_time_units(theirs)
            if not same_value(theirs, ours):
                raise AssertionError(
                    f"{name}: encoding[{key!r}] is {ours!r}, the source's is {theirs!r}")
    if case.get("same_format_as_source") and case["consolidated"]:
        # Byte-for-byte layout: the metadata documents xarray itself writes when it opens the
        # source and writes it back in the same format (xarray cannot change the format of an
        # opened store without dropping its encoding).
        oracle = out / "xarray_rewrites" / Path(case["store"]).name
        if not oracle.exists():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                src = xr.open_zarr(out / expect["source"], group=expect["group"] or None)
                src.to_zarr(oracle, group=expect["group"] or None, mode="w",
                            zarr_format=int(case["format"][1]))
        ours = metadata_docs(out / case["store"], case["group"], case["format"])
        theirs = metadata_docs(oracle, case["group"], case["format"])
        if ours != theirs:
            diff = [k for k in sorted(set(ours) | set(theirs)) if ours.get(k) != theirs.get(k)]
            raise AssertionError(
                f"metadata differs from what xarray writes for {diff}: "
                + "; ".join(f"{k}: ours {ours.get(k)} vs xarray {theirs.get(k)}" for k in diff))


def check_writes(out):
    out = Path(out)
    cases = json.loads((out / "written" / "cases.json").read_text())["cases"]
    failures = []
    for case in cases:
        try:
            check_one(out, case)
            print(f"ok   {case['store']}", file=sys.stderr)
        except Exception as e:  # noqa: BLE001 - report every failing store, then fail
            failures.append(f"{case['store']}: {type(e).__name__}: {e}")
            print(f"FAIL {case['store']}: {type(e).__name__}: {e}", file=sys.stderr)
    print(f"xarray checked {len(cases)} stores written by chunkflow: "
          f"{len(cases) - len(failures)} ok, {len(failures)} failed", file=sys.stderr)
    if failures:
        sys.exit(1)


COMMANDS = {"write": write, "xpartition-init": xpartition_init, "check-writes": check_writes}

if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in COMMANDS:
        sys.exit(__doc__)
    COMMANDS[sys.argv[1]](sys.argv[2])
