"""Writing golden files reproducibly: the helpers both golden generators share.

safetensors serialises __metadata__ from a Rust HashMap, in random order (safetensors issue #584), so
the raw file differs between runs. write_safetensors rewrites the header with sorted keys (keeping its
length, so the data offsets and the data are untouched), then reads the file back and checks it.
"""
import json
import os
import struct

import torch
from safetensors import safe_open
from safetensors.torch import save_file


def canonicalise_header(path):
    """Rewrite the safetensors JSON header of `path` with __metadata__ and tensor keys sorted."""
    with open(path, "rb") as f:
        blob = bytearray(f.read())
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", None)
    canon = {}
    if meta is not None:
        canon["__metadata__"] = {k: meta[k] for k in sorted(meta)}
    for k in sorted(header):
        canon[k] = header[k]
    text = json.dumps(canon, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if len(text) > n:
        raise RuntimeError("canonical header longer than the original")
    blob[8 : 8 + n] = text + b" " * (n - len(text))
    with open(path, "wb") as f:
        f.write(bytes(blob))


def write_safetensors(path, tensors, metadata):
    """save_file, made reproducible and verified by reading it back. Returns the file's size."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    save_file(tensors, path, metadata=metadata)
    canonicalise_header(path)
    with safe_open(path, framework="pt") as f:
        assert f.metadata() == metadata
        assert sorted(f.keys()) == sorted(tensors)
        for k in f.keys():
            t = f.get_tensor(k)
            assert t.dtype == tensors[k].dtype and torch.equal(t, tensors[k]), k
    return os.path.getsize(path)
