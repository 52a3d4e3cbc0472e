"""The Python references for bench/compare/rechunk.sh; prints one JSON line.

Modes:
  rechunk SRC DST --chunks 4096,32,32 --max-mem 256MB --temp TMP
      rechunker.rechunk(source, target_chunks, max_mem, target_store, temp_store=TMP)
      .execute() on dask's threaded scheduler (rechunker's default executor). The target keeps
      the source's compressor (rechunker copies it from the source array).
  read SRC
      zarr-python reads the whole array into memory (I/O baseline).
  write SRC DST --chunks C
      zarr-python writes the array (read first, untimed) to DST with chunks C and the source's
      compressor (I/O baseline: the cost of encoding and storing the target alone).

Timings cover the named operation only (not interpreter start-up or imports). Peak RSS comes
from the caller (/usr/bin/time -v).
"""

import argparse
import json
import shutil
import sys
import time

import zarr


def parse_chunks(text):
    return tuple(int(c) for c in text.split(","))


def open_source(path):
    return zarr.open(path, mode="r")


def create_like(src, path, chunks):
    """A new array at `path` with the source's shape, dtype, fill value and codecs (zarr 2 or 3)."""
    if zarr.__version__.startswith("2."):
        return zarr.create(
            shape=src.shape, chunks=chunks, dtype=src.dtype, fill_value=src.fill_value,
            compressor=src.compressor, filters=src.filters, store=path, overwrite=True,
        )
    return zarr.create_array(
        store=path, shape=src.shape, chunks=chunks, dtype=src.dtype, fill_value=src.fill_value,
        compressors=src.compressors, filters=src.filters, zarr_format=src.metadata.zarr_format,
        overwrite=True,
    )


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["rechunk", "read", "write"])
    p.add_argument("source")
    p.add_argument("target", nargs="?")
    p.add_argument("--chunks", default="4096,32,32")
    p.add_argument("--max-mem", default="256MB")
    p.add_argument("--temp")
    a = p.parse_args()

    src = open_source(a.source)
    out = {"tool": a.mode, "zarr": zarr.__version__, "shape": list(src.shape), "source_chunks": list(src.chunks)}
    if a.mode == "read":
        t = time.perf_counter()
        data = src[...]
        out["seconds"] = time.perf_counter() - t
        out["checksum"] = float(data[:: 97, :: 13, :: 11].sum())
    elif a.mode == "write":
        data = src[...]
        shutil.rmtree(a.target, ignore_errors=True)
        dst = create_like(src, a.target, parse_chunks(a.chunks))
        t = time.perf_counter()
        dst[...] = data
        out["seconds"] = time.perf_counter() - t
        out["chunks"] = list(dst.chunks)
    else:
        import dask
        import rechunker
        from importlib.metadata import version

        for path in (a.target, a.temp):
            shutil.rmtree(path, ignore_errors=True)
        t = time.perf_counter()
        plan = rechunker.rechunk(
            src, parse_chunks(a.chunks), a.max_mem, a.target, temp_store=a.temp
        )
        plan.execute()
        out["seconds"] = time.perf_counter() - t
        out.update(
            rechunker=version("rechunker"), dask=dask.__version__, max_mem=a.max_mem,
            chunks=list(zarr.open(a.target, mode="r").chunks),
        )
        shutil.rmtree(a.temp, ignore_errors=True)
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
