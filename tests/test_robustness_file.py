"""Hostile and damaged .tafa files: every one is refused with FingerprintFileError.

A fingerprint is kept as evidence and may be handed around, so the loader must never
crash with a foreign exception, never unpickle, and never allocate what a file
merely claims. Saving must be atomic: a write that fails half-way keeps the old file.

The fingerprints here are built directly from random arrays (no model, no training):
the file format does not care where the numbers came from, and this keeps the suite fast.
Measured outcomes of the fuzz run go to fuzz_file.json in the ``results_dir`` folder (see
conftest.py; benchmarks/results holds the committed run).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import time
import tracemalloc
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tafa_tf as tafa
from tafa_tf.errors import FingerprintFileError
from tafa_tf.archive import MANIFEST
from tafa_tf.record import ARRAY_NAMES

# Exceptions that Fingerprint.load is known to let escape (none since zlib.error,
# tokenize.TokenError, MemoryError and OverflowError were fixed). If a new one is found,
# pin it with a strict xfail test and list it here, so that the property and fuzz tests
# count it as a "known bug" outcome and keep checking everything else.
KNOWN_LOADER_BUGS: tuple[type[BaseException], ...] = ()
ARRAY_FIELDS = ARRAY_NAMES
HYPOTHESIS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def synthetic_fingerprint(n: int = 6, d: int = 5, k: int = 3, seed: int = 0) -> tafa.Fingerprint:
    rng = np.random.default_rng(seed)
    u = rng.standard_normal((n, d)).astype("float32")
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    return tafa.Fingerprint(
        x=rng.random((n, d), dtype="float32"),
        u=u,
        delta=rng.uniform(1e-3, 1e-2, n).astype("float32"),
        kind=rng.integers(0, 3, n).astype("int8"),
        targets=rng.integers(-1, 20, (n, 2)).astype("int32"),
        y0=rng.standard_normal((n, k)).astype("float32"),
        yp=rng.standard_normal((n, k)).astype("float32"),
        ym=rng.standard_normal((n, k)).astype("float32"),
        kink=rng.standard_normal((n, k)).astype("float32"),
        task="classification",
        output_kind="logits",
        input_shape=(d,),
        output_shape=(k,),
        domain=tafa.domains.Box(0.0, 1.0),
        owner={"name": "synthetic", "digest": "0" * 64, "params": 1},
        created="2024-01-01T00:00:00+00:00",
    )


def assert_same(a: tafa.Fingerprint, b: tafa.Fingerprint) -> None:
    for name in ARRAY_FIELDS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert (a.task, a.output_kind, a.input_shape, a.output_shape) == (b.task, b.output_kind, b.input_shape, b.output_shape)
    assert a.domain.to_dict() == b.domain.to_dict()


@pytest.fixture(scope="module")
def good_bytes(tmp_path_factory) -> bytes:
    path = synthetic_fingerprint().save(tmp_path_factory.mktemp("fp") / "good.tafa")
    return path.read_bytes()


def entries(raw: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        return {i.filename: zf.read(i.filename) for i in zf.infolist()}


def npy(arr: np.ndarray, allow_pickle: bool = False) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


def forge(path: Path, items: dict[str, bytes], *, manifest_edit=None, reseal: bool = True) -> Path:
    """Write a zip of ``items``; with ``reseal`` the manifest's sha256 and shapes are made
    to match the (altered) arrays, as a forger who read the format would do, so the
    loader's deeper checks are reached rather than the hash check."""
    items = dict(items)
    if MANIFEST in items:
        m = json.loads(items[MANIFEST])
        if reseal:
            for name in ARRAY_FIELDS:
                blob = items.get(f"{name}.npy")
                if blob is not None and isinstance(m.get("arrays", {}).get(name), dict):
                    m["arrays"][name]["sha256"] = hashlib.sha256(blob).hexdigest()
        if manifest_edit is not None:
            m = manifest_edit(m)
        items[MANIFEST] = json.dumps(m).encode() if not isinstance(m, bytes) else m
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in items.items():
            zf.writestr(name, data)
    return path


def load_outcome(path: Path) -> str:
    """'loaded' or 'refused'; any other exception propagates and fails the test."""
    try:
        tafa.Fingerprint.load(path)
    except FingerprintFileError:
        return "refused"
    return "loaded"


# -- specific hostile files -----------------------------------------------------------------


def test_round_trip_of_a_synthetic_fingerprint(good_bytes, tmp_path):
    p = tmp_path / "a.tafa"
    p.write_bytes(good_bytes)
    assert_same(tafa.Fingerprint.load(p), synthetic_fingerprint())


@pytest.mark.parametrize("keep", [0, 1, 21, 22, 100, 0.25, 0.5, 0.9, -22, -1])
def test_truncated_files_are_refused(good_bytes, tmp_path, keep):
    cut = int(len(good_bytes) * keep) if isinstance(keep, float) else (keep if keep >= 0 else len(good_bytes) + keep)
    p = tmp_path / "t.tafa"
    p.write_bytes(good_bytes[:cut])
    with pytest.raises(FingerprintFileError, match="not a usable tafa fingerprint"):
        tafa.Fingerprint.load(p)


def test_not_a_zip_directory_and_empty_are_refused(tmp_path):
    (tmp_path / "text.tafa").write_text("hello, I am not a fingerprint")
    (tmp_path / "dir.tafa").mkdir()
    (tmp_path / "empty.tafa").write_bytes(b"")
    with pytest.raises(FingerprintFileError, match="BadZipFile"):
        tafa.Fingerprint.load(tmp_path / "text.tafa")
    with pytest.raises(FingerprintFileError, match="No fingerprint file"):
        tafa.Fingerprint.load(tmp_path / "dir.tafa")
    with pytest.raises(FingerprintFileError):
        tafa.Fingerprint.load(tmp_path / "empty.tafa")


@pytest.mark.parametrize("version", [0, 2, 99, "1", 1.5, None, [1]])
def test_other_format_versions_are_refused(good_bytes, tmp_path, version):
    p = forge(tmp_path / "v.tafa", entries(good_bytes), manifest_edit=lambda m: {**m, "version": version})
    with pytest.raises(FingerprintFileError, match="format version"):
        tafa.Fingerprint.load(p)


@pytest.mark.parametrize(
    "name",
    ["../x.npy", "../../etc/evil", "/abs/path.npy", "sub/../../x.npy", "x.npy/../manifest.json", "C:\\win.npy"],
)
def test_path_traversal_and_extra_entries_are_refused_without_writing(good_bytes, tmp_path, name):
    items = entries(good_bytes)
    items[name] = b"payload"
    p = forge(tmp_path / "trav.tafa", items)
    before = sorted(x.name for x in tmp_path.parent.iterdir())
    with pytest.raises(FingerprintFileError, match="unexpected entries"):
        tafa.Fingerprint.load(p)
    assert sorted(x.name for x in tmp_path.parent.iterdir()) == before
    assert sorted(x.name for x in tmp_path.iterdir()) == ["trav.tafa"]


def test_missing_entry_is_refused(good_bytes, tmp_path):
    items = entries(good_bytes)
    del items["kink.npy"]
    with pytest.raises(FingerprintFileError, match="missing entries"):
        tafa.Fingerprint.load(forge(tmp_path / "m.tafa", items))


class _Boom:
    """Unpickling this would create a marker file: proof that code ran."""

    marker: Path | None = None

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("field_name", ["x", "kind", "targets"])
def test_object_arrays_never_run_code_even_with_a_matching_hash(good_bytes, tmp_path, field_name):
    marker = tmp_path / "code-ran"
    _Boom.marker = marker
    evil = np.empty(6, dtype=object)
    evil[:] = [_Boom() for _ in range(6)]
    items = entries(good_bytes)
    items[f"{field_name}.npy"] = npy(evil, allow_pickle=True)
    # the hash is resealed: the loader's hash check passes and np.load itself is reached
    p = forge(tmp_path / "evil.tafa", items)
    with pytest.raises(FingerprintFileError, match=f"array '{field_name}'"):
        tafa.Fingerprint.load(p)
    assert not marker.exists(), "loading a fingerprint ran code from the file"


@pytest.mark.parametrize(
    "arr",
    [
        np.array(["a", "b"]),  # unicode
        np.zeros(3, dtype=[("a", "f4"), ("b", "i4")]),  # structured
        np.zeros(3, dtype="complex64"),
        np.zeros(3, dtype="bool"),
        np.zeros(3, dtype="float16"),
        np.zeros(3, dtype="M8[s]"),
    ],
    ids=["unicode", "structured", "complex", "bool", "float16", "datetime"],
)
def test_foreign_dtypes_are_refused(good_bytes, tmp_path, arr):
    items = entries(good_bytes)
    items["delta.npy"] = npy(arr)
    p = forge(tmp_path / "dt.tafa", items, manifest_edit=lambda m: _set_spec(m, "delta", arr))
    with pytest.raises(FingerprintFileError, match="'delta'"):
        tafa.Fingerprint.load(p)


def _set_spec(m: dict, name: str, arr: np.ndarray) -> dict:
    m["arrays"][name]["shape"] = list(arr.shape)
    m["arrays"][name]["dtype"] = str(arr.dtype)
    return m


def test_arrays_unlike_the_manifest_or_each_other_are_refused(good_bytes, tmp_path):
    items = entries(good_bytes)
    # a shape that differs from the manifest
    items2 = dict(items, **{"x.npy": npy(np.zeros((6, 4), "float32"))})
    with pytest.raises(FingerprintFileError, match="unlike its manifest"):
        tafa.Fingerprint.load(forge(tmp_path / "a.tafa", items2))
    # manifest and array agree, but the arrays disagree with each other
    arr = np.zeros((5, 5), "float32")
    items3 = dict(items, **{"x.npy": npy(arr)})
    p = forge(tmp_path / "b.tafa", items3, manifest_edit=lambda m: _set_spec(m, "x", arr))
    with pytest.raises(FingerprintFileError, match="array 'u' has shape"):
        tafa.Fingerprint.load(p)
    # NaN in the owner's answers, and a probe step that is not positive
    nan = entries(good_bytes)
    y0 = np.load(io.BytesIO(nan["y0.npy"]))
    y0[0, 0] = np.nan
    nan["y0.npy"] = npy(y0)
    with pytest.raises(FingerprintFileError, match="NaN or inf"):
        tafa.Fingerprint.load(forge(tmp_path / "c.tafa", nan))
    neg = entries(good_bytes)
    neg["delta.npy"] = npy(-np.ones(6, "float32"))
    with pytest.raises(FingerprintFileError, match="probe step"):
        tafa.Fingerprint.load(forge(tmp_path / "d.tafa", neg))


def test_background_round_trips_with_its_nans_and_bad_values_are_refused(tmp_path):
    background = np.array([0.1, np.nan, 0.0, 0.5, np.nan, 0.2], "float32")
    fp = replace(synthetic_fingerprint(), background=background)
    loaded = tafa.Fingerprint.load(fp.save(tmp_path / "bg.tafa"))
    np.testing.assert_array_equal(loaded.background, background)  # NaN where no background was measured
    assert synthetic_fingerprint().background is None  # files from before 0.2 load without one
    for bad in (np.array([-0.1, 0, 0, 0, 0, 0], "float32"), np.array([np.inf, 0, 0, 0, 0, 0], "float32"),
                np.zeros(5, "float32")):
        with pytest.raises(FingerprintFileError, match="background"):
            tafa.Fingerprint.load(replace(fp, background=bad).save(tmp_path / "bad.tafa"))


def test_fresh_answers_round_trip_and_bad_shapes_are_refused(tmp_path):
    fp = synthetic_fingerprint()
    out = fp.y0.shape[1]
    fresh = np.arange(2 * 3 * len(fp.bend_points()) * out, dtype="float32").reshape(-1, out)  # two fresh models
    loaded = tafa.Fingerprint.load(replace(fp, fresh=fresh).save(tmp_path / "fresh.tafa"))
    np.testing.assert_array_equal(loaded.fresh, fresh)
    assert fp.fresh is None  # files from before 0.4 load without them
    for bad in (fresh[:-1], fresh[:, :1] if out > 1 else np.zeros((len(fresh), 2), "float32"),
                np.where(np.arange(fresh.size).reshape(fresh.shape) == 0, np.nan, fresh).astype("float32")):
        with pytest.raises(FingerprintFileError, match="'fresh'"):
            tafa.Fingerprint.load(replace(fp, fresh=bad).save(tmp_path / "bad.tafa"))


def test_fresh_models_answer_at_every_bend_and_nowhere_else(tmp_path):
    from tafa_tf.probes import KIND_DECISION

    fp = synthetic_fingerprint(n=300)
    bends = np.flatnonzero(fp.kind != KIND_DECISION)
    np.testing.assert_array_equal(fp.bend_points(), bends)  # every bend: a subset misreads the level
    fresh = np.zeros((3 * 3 * len(bends), fp.y0.shape[1]), "float32")  # three fresh models
    loaded = tafa.Fingerprint.load(replace(fp, fresh=fresh).save(tmp_path / "f.tafa"))
    np.testing.assert_array_equal(loaded.fresh, fresh)
    with pytest.raises(FingerprintFileError, match=rf"multiple of {3 * len(bends)} rows"):
        tafa.Fingerprint.load(replace(fp, fresh=np.zeros((3 * fp.n_points, 3), "float32")).save(tmp_path / "b.tafa"))


def huge_header_npy(shape: tuple[int, ...], descr: str = "<f4") -> bytes:
    """An .npy whose header claims ``shape`` but which carries 64 bytes of data."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue() + b"\0" * 64


@pytest.mark.parametrize("shape", [(2**62,), (2**40, 2**40), (10**9,), (-1,)])
def test_huge_or_negative_declared_arrays_are_refused(good_bytes, tmp_path, shape):
    items = entries(good_bytes)
    items["delta.npy"] = huge_header_npy(shape)
    p = forge(tmp_path / "huge.tafa", items)
    with pytest.raises(FingerprintFileError, match="'delta'"):
        tafa.Fingerprint.load(p)


def test_declared_terabyte_array_is_refused_not_allocated(good_bytes, tmp_path):
    items = entries(good_bytes)
    items["delta.npy"] = huge_header_npy((10**12,))
    p = forge(tmp_path / "tb.tafa", items)
    with pytest.raises(FingerprintFileError, match="'delta'"):
        tafa.Fingerprint.load(p)


@pytest.mark.parametrize(
    "edit",
    [
        lambda m: {**m, "input_shape": ["five"]},
        lambda m: {**m, "input_shape": None},
        lambda m: {**m, "output_shape": [[3]]},
        lambda m: {**m, "domain": {"kind": "torus"}},
        lambda m: {**m, "domain": {"kind": "box", "low": 1.0, "high": 0.0}},
        lambda m: {**m, "domain": {"kind": "gaussian", "std": -1}},
        lambda m: {**m, "domain": "box"},
        lambda m: {**m, "task": "images"},
        lambda m: {**m, "format": "zip"},
        lambda m: {**m, "arrays": []},
        lambda m: {**m, "calibration": {"format": "nope"}},
        lambda m: {**m, "calibration": [1, 2]},
        lambda m: [m],
        lambda m: b"{not json",
        lambda m: b"\xff\xfe\x00garbage",
        lambda m: b"[" * 100_000 + b"]" * 100_000,
    ],
)
def test_malformed_manifests_are_refused(good_bytes, tmp_path, edit):
    p = forge(tmp_path / "man.tafa", entries(good_bytes), manifest_edit=edit)
    with pytest.raises(FingerprintFileError, match="not a usable tafa fingerprint"):
        tafa.Fingerprint.load(p)


def test_infinite_shape_in_manifest_is_refused(good_bytes, tmp_path):
    p = forge(tmp_path / "inf.tafa", entries(good_bytes), manifest_edit=lambda m: {**m, "input_shape": [float("inf")]})
    with pytest.raises(FingerprintFileError, match="not a usable tafa fingerprint"):
        tafa.Fingerprint.load(p)


def _patch_central_sizes(raw: bytes, name: bytes, size: int) -> bytes:
    """Rewrite the uncompressed size that the central directory declares for ``name``."""
    out = bytearray(raw)
    pos = 0
    while True:
        pos = out.find(b"PK\x01\x02", pos)
        if pos < 0:
            return bytes(out)
        n_len = struct.unpack_from("<H", out, pos + 28)[0]
        if out[pos + 46 : pos + 46 + n_len] == name:
            struct.pack_into("<I", out, pos + 24, size)
        pos += 4


def test_zip_declaring_gigabytes_is_refused_before_reading(good_bytes, tmp_path):
    raw = _patch_central_sizes(good_bytes, b"x.npy", 3 * 2**30)
    p = tmp_path / "bomb-declared.tafa"
    p.write_bytes(raw)
    with pytest.raises(FingerprintFileError, match="byte limit"):
        tafa.Fingerprint.load(p)


def test_real_zip_bomb_is_refused(good_bytes, tmp_path):
    """64 MiB of zeros deflate to ~64 KiB; the hash check refuses the entry."""
    items = entries(good_bytes)
    items["x.npy"] = b"\0" * (64 * 2**20)
    p = forge(tmp_path / "bomb.tafa", items, reseal=False)
    assert p.stat().st_size < 2**20
    with pytest.raises(FingerprintFileError):
        tafa.Fingerprint.load(p)


def test_zip_bomb_is_refused_without_inflating_it(good_bytes, tmp_path):
    items = entries(good_bytes)
    items["x.npy"] = b"\0" * (64 * 2**20)
    p = forge(tmp_path / "bomb.tafa", items, reseal=False)
    tracemalloc.start()
    try:
        with pytest.raises(FingerprintFileError):
            tafa.Fingerprint.load(p)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # the manifest says x is 6x5 float32: nothing near 64 MiB needs to be read
    assert peak < 8 * 2**20, f"peak {peak / 2**20:.0f} MiB while refusing a 64 MiB bomb"


def test_duplicate_entry_names_cannot_smuggle_other_arrays(good_bytes, tmp_path):
    items = entries(good_bytes)
    p = forge(tmp_path / "dup.tafa", items)
    with zipfile.ZipFile(p, "a") as zf, pytest.warns(UserWarning, match="Duplicate name"):
        zf.writestr("x.npy", npy(np.ones((6, 5), "float32")))
    # either refused, or the arrays loaded are those the manifest's hashes vouch for
    try:
        fp = tafa.Fingerprint.load(p)
    except FingerprintFileError:
        return
    np.testing.assert_array_equal(fp.x, synthetic_fingerprint().x)


def _corrupt_deflate(raw: bytes, name: bytes) -> bytes:
    """Overwrite the compressed data of entry ``name``: 0xff opens an invalid deflate block."""
    out = bytearray(raw)
    pos = out.find(b"PK\x03\x04")  # first local header
    while pos >= 0:
        size = struct.unpack_from("<I", out, pos + 18)[0]
        n_len, x_len = struct.unpack_from("<HH", out, pos + 26)
        start = pos + 30 + n_len + x_len
        if out[pos + 30 : pos + 30 + n_len] == name:
            out[start : start + size] = b"\xff" * size
            return bytes(out)
        pos = out.find(b"PK\x03\x04", start + size)
    raise AssertionError(f"no entry {name!r}")


def test_damaged_compressed_data_is_refused(good_bytes, tmp_path):
    p = tmp_path / "deflate.tafa"
    p.write_bytes(_corrupt_deflate(good_bytes, b"x.npy"))
    with pytest.raises(FingerprintFileError, match="not a usable tafa fingerprint"):
        tafa.Fingerprint.load(p)


def test_unbalanced_npy_header_is_refused(good_bytes, tmp_path):
    h = b"{'descr': '<f4', 'fortran_order': False, 'shape': (6,   "
    h = h + b" " * (64 - 10 - len(h) - 1) + b"\n"
    items = entries(good_bytes)
    items["delta.npy"] = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h + b"\0" * 24
    with pytest.raises(FingerprintFileError, match="'delta'"):
        tafa.Fingerprint.load(forge(tmp_path / "tok.tafa", items))


# -- property-based ----------------------------------------------------------------------------


@HYPOTHESIS
@given(
    n=st.integers(1, 12),
    d=st.integers(1, 8),
    k=st.integers(1, 5),
    seed=st.integers(0, 2**16),
    task=st.sampled_from(["classification", "regression", "generation"]),
)
def test_any_valid_fingerprint_round_trips(tmp_path_factory, n, d, k, seed, task):
    from dataclasses import replace

    fp = replace(synthetic_fingerprint(n, d, k, seed), task=task)
    p = fp.save(tmp_path_factory.mktemp("rt") / "fp.tafa")
    assert_same(tafa.Fingerprint.load(p), fp)


@HYPOTHESIS
@given(data=st.data())
def test_any_byte_damage_is_refused_or_harmless(good_bytes, tmp_path_factory, data):
    raw = bytearray(good_bytes)
    op = data.draw(st.sampled_from(["flip", "truncate", "insert", "overwrite"]))
    if op == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            i = data.draw(st.integers(0, len(raw) - 1))
            raw[i] ^= 1 << data.draw(st.integers(0, 7))
    elif op == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    elif op == "insert":
        i = data.draw(st.integers(0, len(raw)))
        raw[i:i] = data.draw(st.binary(min_size=1, max_size=64))
    else:
        i = data.draw(st.integers(0, len(raw) - 1))
        chunk = data.draw(st.binary(min_size=1, max_size=64))
        raw[i : i + len(chunk)] = chunk
    p = tmp_path_factory.mktemp("dmg") / "fp.tafa"
    p.write_bytes(bytes(raw))
    try:
        fp = tafa.Fingerprint.load(p)
    except (FingerprintFileError, *KNOWN_LOADER_BUGS):
        return
    # damage that the loader lets through (a timestamp, an attribute) changes nothing it returns
    assert_same(fp, synthetic_fingerprint())


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


@HYPOTHESIS
@given(
    key=st.sampled_from(
        ["format", "version", "task", "output_kind", "input_shape", "output_shape", "domain", "owner",
         "synthesis", "coverage", "calibration", "arrays", "created"]
    ),
    value=json_values,
)
def test_any_manifest_value_is_refused_or_loads(good_bytes, tmp_path_factory, key, value):
    # Infinity in shapes is the known OverflowError bug (xfail above); keep this property about the rest
    if key in ("input_shape", "output_shape") and "inf" in repr(value).lower():
        value = None
    p = forge(tmp_path_factory.mktemp("man") / "fp.tafa", entries(good_bytes), manifest_edit=lambda m: {**m, key: value})
    try:
        assert load_outcome(p) in ("loaded", "refused")
    except KNOWN_LOADER_BUGS:
        pass


# -- bounded fuzz run --------------------------------------------------------------------------


def _mutate(raw: bytes, rng: np.random.Generator) -> tuple[str, bytes]:
    b = bytearray(raw)
    op = rng.choice(["bitflip", "byteset", "truncate", "splice", "zero_run", "manifest", "array"])
    if op == "bitflip":
        for i in rng.integers(0, len(b), rng.integers(1, 16)):
            b[i] ^= 1 << int(rng.integers(0, 8))
    elif op == "byteset":
        for i in rng.integers(0, len(b), rng.integers(1, 16)):
            b[i] = int(rng.integers(0, 256))
    elif op == "truncate":
        b = b[: int(rng.integers(0, len(b)))]
    elif op == "splice":
        i, j = sorted(rng.integers(0, len(b), 2))
        b = b[:i] + b[j:] + b[i:j]
    elif op == "zero_run":
        i = int(rng.integers(0, len(b)))
        b[i : i + int(rng.integers(1, 256))] = b"\0" * len(b[i : i + int(rng.integers(1, 256))])
    else:
        items = entries(raw)
        if op == "manifest":
            text = bytearray(items[MANIFEST])
            for i in rng.integers(0, len(text), rng.integers(1, 4)):
                text[i] = int(rng.choice(list(b'0129-."[]{}:,eE ')))
            items[MANIFEST] = bytes(text)
        else:
            name = f"{rng.choice(ARRAY_FIELDS)}.npy"
            blob = bytearray(items[name])
            for i in rng.integers(0, min(len(blob), 128), rng.integers(1, 4)):  # the .npy header
                blob[i] = int(rng.integers(32, 127))
            items[name] = bytes(blob)
            # reseal so the header damage reaches np.load rather than the hash check
            m = json.loads(items[MANIFEST])
            m["arrays"][name[:-4]]["sha256"] = hashlib.sha256(items[name]).hexdigest()
            items[MANIFEST] = json.dumps(m).encode()
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for k, v in items.items():
                zf.writestr(k, v)
        b = bytearray(buf.getvalue())
    return str(op), bytes(b)


def test_bounded_fuzz_run(good_bytes, tmp_path, results_dir):
    """Up to 1500 random mutations or 20 s: every outcome is 'refused', a faithful load, or a
    load of a file whose hash a forger resealed; the known loader bugs are counted apart."""
    rng = np.random.default_rng(20240601)
    outcomes: dict[str, dict[str, int]] = {}
    crashes: list[str] = []
    known: dict[str, str] = {}
    start, cases = time.monotonic(), 0
    p = tmp_path / "fuzz.tafa"
    while cases < 1500 and time.monotonic() - start < 20:
        op, raw = _mutate(good_bytes, rng)
        p.write_bytes(raw)
        try:
            fp = tafa.Fingerprint.load(p)
            assert_same(fp, synthetic_fingerprint())
            result = "loaded_intact"
        except FingerprintFileError:
            result = "refused"
        except AssertionError:
            # the "array" mutation reseals the hash, as a forger would: a forged header
            # (say, another byte order) loads by design; the manifest hash is not a signature
            result = "loaded_forged" if op == "array" else "loaded_altered"
            if op != "array":
                crashes.append(f"{op}: loaded but altered")
        except KNOWN_LOADER_BUGS as e:
            result = f"known bug: uncaught {type(e).__module__}.{type(e).__name__}"
            known.setdefault(result, f"{op}: {str(e)[:100]}")
        except BaseException as e:  # noqa: BLE001 - any foreign exception is the finding
            result = f"uncaught {type(e).__name__}"
            crashes.append(f"{op}: {type(e).__name__}: {str(e)[:120]}")
        outcomes.setdefault(op, {}).setdefault(result, 0)
        outcomes[op][result] += 1
        cases += 1
    figures = {
        "cases": cases,
        "seconds": round(time.monotonic() - start, 2),
        "outcomes_by_mutation": outcomes,
        "totals": {
            r: sum(o.get(r, 0) for o in outcomes.values())
            for r in sorted({r for o in outcomes.values() for r in o})
        },
        "failures": crashes[:20],
        "known_bug_examples": known,
    }
    (results_dir / "fuzz_file.json").write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    print("\nfuzz run over Fingerprint.load:", json.dumps(figures, indent=2, sort_keys=True))
    assert cases >= 200
    assert not crashes, crashes[:5]


# -- atomic save ---------------------------------------------------------------------------------


def _previous(tmp_path: Path) -> tuple[Path, bytes]:
    path = synthetic_fingerprint(seed=1).save(tmp_path / "owner.tafa")
    return path, path.read_bytes()


def _assert_intact(tmp_path: Path, path: Path, before: bytes) -> None:
    assert path.read_bytes() == before
    assert_same(tafa.Fingerprint.load(path), synthetic_fingerprint(seed=1))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["owner.tafa"], "a temporary file was left behind"


@pytest.mark.parametrize("after_entries", [0, 1, 5, 9])
def test_disk_full_in_the_middle_of_the_zip_keeps_the_previous_file(tmp_path, monkeypatch, after_entries):
    path, before = _previous(tmp_path)
    real = zipfile.ZipFile.writestr
    written = {"n": 0}

    def writestr(self, *args, **kwargs):
        if written["n"] >= after_entries:
            raise OSError(28, "No space left on device")
        written["n"] += 1
        return real(self, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "writestr", writestr)
    with pytest.raises(OSError, match="No space left"):
        synthetic_fingerprint(seed=2).save(path)
    monkeypatch.undo()
    _assert_intact(tmp_path, path, before)


@pytest.mark.parametrize("exc", [KeyboardInterrupt, MemoryError])
def test_interrupted_save_keeps_the_previous_file(tmp_path, monkeypatch, exc):
    path, before = _previous(tmp_path)

    def interrupted(*args, **kwargs):
        raise exc()

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(exc):
        synthetic_fingerprint(seed=2).save(path)
    monkeypatch.undo()
    _assert_intact(tmp_path, path, before)


def test_save_failure_before_any_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path, before = _previous(tmp_path)

    def cannot_create(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("tempfile.mkstemp", cannot_create)
    with pytest.raises(PermissionError):
        synthetic_fingerprint(seed=2).save(path)
    monkeypatch.undo()
    _assert_intact(tmp_path, path, before)


def test_successful_save_replaces_whole(tmp_path):
    path, _ = _previous(tmp_path)
    synthetic_fingerprint(seed=3).save(path)
    assert_same(tafa.Fingerprint.load(path), synthetic_fingerprint(seed=3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["owner.tafa"]
