"""Loading suspects from a real hub-compatible server (olah, offline) on loopback."""

from __future__ import annotations

import numpy as np
import pytest
from adapters_models import FORMAT_NAMES, inputs, save_model_as, tiny_model, write_file_saved_model
from hub_server import LoopbackHub, point_hf_at

from adapters import (
    GatedRepoError,
    HubConnectionError,
    ModelTooLargeError,
    NoModelError,
    RepoNotFoundError,
    RevisionNotFoundError,
    UnsafeModelError,
    load_suspect,
)
from adapters.hub import HubRef, translate_hub_errors

pytestmark = pytest.mark.hub

FORMATS = list(FORMAT_NAMES)


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """A loopback hub holding one repository per format plus broken and malicious ones."""
    root = tmp_path_factory.mktemp("hub")
    models = tmp_path_factory.mktemp("hub_models")
    server = LoopbackHub(root)
    model = tiny_model(0)
    server.models = {"model": model}
    for fmt in FORMATS:
        saved = save_model_as(model, fmt, models / fmt)
        # The model at the repo root, beside files the loader must not download.
        content = {"README.md": "a model\n", "unrelated.bin": b"\0" * 50_000}
        content["" if saved.is_dir() else saved.name] = saved
        server.add_repo(f"fmt/{fmt}", content)
    lam = tiny_model(1, lambda_layer=True)
    server.models["lambda"] = lam
    server.add_repo("evil/lambda", {"": save_model_as(lam, "keras_folder", models / "lam")})
    server.pwned = root / "pwned.txt"
    server.add_repo(
        "evil/writefile", {"": write_file_saved_model(models / "evil_sm", server.pwned)}
    )
    server.add_repo("broken/empty", {"README.md": "nothing to see\n"})
    server.add_repo("broken/truncated", {"model.keras": b"PK\x03\x04truncated"})
    server.start()
    yield server
    server.stop()


@pytest.fixture
def hf_env(hub, tmp_path, monkeypatch):
    point_hf_at(monkeypatch, hub, tmp_path / "hf_home")
    return tmp_path / "hf_home"


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_loads_from_the_hub_with_only_its_files(hub, hf_env, fmt):
    suspect = load_suspect(f"hf://fmt/{fmt}")
    x = inputs(6)
    np.testing.assert_allclose(suspect(x), hub.models["model"](x).numpy(), rtol=1e-5, atol=1e-6)
    assert suspect.format == fmt
    assert suspect.source == f"hf://fmt/{fmt}"
    assert suspect.commit_sha is not None and len(suspect.commit_sha) == 40
    downloaded = {p.name for p in hf_env.rglob("*") if p.is_file()}
    assert "unrelated.bin" not in downloaded and "README.md" not in downloaded
    assert {f.path.split("/")[-1] for f in suspect.files} <= downloaded


def test_pinned_revision_loads_that_commit_and_reports_its_sha(hub, hf_env, tmp_path):
    old, new = tiny_model(10), tiny_model(11)
    sha_old = hub.add_repo(
        "org/pinned", {"model.keras": save_model_as(old, "keras", tmp_path / "a")}
    )
    sha_new = hub.add_repo(
        "org/pinned", {"model.keras": save_model_as(new, "keras", tmp_path / "b")}
    )
    x = inputs(4)
    pinned = load_suspect(f"hf://org/pinned@{sha_old}")
    np.testing.assert_allclose(pinned(x), old(x).numpy(), rtol=1e-5, atol=1e-6)
    assert pinned.commit_sha == sha_old and pinned.to_dict()["revision"] == sha_old
    short = load_suspect("hf://org/pinned", revision=sha_old[:10])
    assert short.commit_sha == sha_old
    latest = load_suspect("hf://org/pinned")
    np.testing.assert_allclose(latest(x), new(x).numpy(), rtol=1e-5, atol=1e-6)
    assert latest.commit_sha == sha_new


def test_missing_repo(hf_env):
    with pytest.raises(RepoNotFoundError, match=r"org/does-not-exist was not found.*HF_TOKEN"):
        load_suspect("hf://org/does-not-exist")


def test_missing_revision(hf_env):
    with pytest.raises(RevisionNotFoundError, match=r"no revision 'no-such-branch'"):
        load_suspect("hf://fmt/keras@no-such-branch")


def test_repo_with_no_model(hf_env):
    with pytest.raises(NoModelError, match=r"Received: files=\['README.md'\]"):
        load_suspect("hf://broken/empty")


def test_truncated_model_is_a_load_error(hf_env):
    with pytest.raises(ValueError, match="zip archive"):
        load_suspect("hf://broken/truncated")


def test_lambda_model_from_the_hub_is_refused_by_default_and_loads_when_trusted(hub, hf_env):
    with pytest.raises(UnsafeModelError, match="trust_code=True"):
        load_suspect("hf://evil/lambda")
    suspect = load_suspect("hf://evil/lambda", trust_code=True)
    x = inputs(3)
    np.testing.assert_allclose(suspect(x), hub.models["lambda"](x).numpy(), rtol=1e-5, atol=1e-6)


def test_saved_model_with_write_file_from_the_hub_is_refused(hub, hf_env):
    with pytest.raises(UnsafeModelError, match="WriteFile"):
        load_suspect("hf://evil/writefile")
    assert not hub.pwned.exists()


def test_oversize_model_is_refused_before_download(hf_env):
    with pytest.raises(ModelTooLargeError, match=r"hf://fmt/keras_folder.*max_bytes=4096"):
        load_suspect("hf://fmt/keras_folder", max_bytes=4096)
    assert not [p for p in hf_env.rglob("*.h5")]


def test_offline_mode_uses_the_cache(hub, hf_env, monkeypatch):
    online = load_suspect("hf://fmt/keras")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing may be asked
    offline = load_suspect("hf://fmt/keras")
    assert offline.commit_sha == online.commit_sha
    assert [f.sha256 for f in offline.files] == [f.sha256 for f in online.files]
    with pytest.raises(HubConnectionError, match="HF_HUB_OFFLINE"):
        load_suspect("hf://fmt/h5")


def test_unreachable_server_is_a_connection_error(hf_env, monkeypatch, tmp_path):
    dead = LoopbackHub(tmp_path / "dead")  # never started: its port refuses connections
    monkeypatch.setenv("HF_ENDPOINT", dead.endpoint)
    with pytest.raises(HubConnectionError, match="Connection refused|ConnectError"):
        load_suspect("hf://fmt/keras")


def test_gated_and_forbidden_answers_are_permission_errors():
    import httpx2
    from huggingface_hub import errors as hf

    ref = HubRef("org/gated")
    request = httpx2.Request("GET", "http://127.0.0.1/api/models/org/gated")
    gated = hf.GatedRepoError("gated", response=httpx2.Response(403, request=request))
    forbidden = hf.HfHubHTTPError("forbidden", response=httpx2.Response(403, request=request))
    for error in (gated, forbidden):
        with pytest.raises(GatedRepoError, match="HF_TOKEN") as info, translate_hub_errors(ref):
            raise error
        assert isinstance(info.value, PermissionError) and info.value.__cause__ is error
    overloaded = hf.HfHubHTTPError("busy", response=httpx2.Response(503, request=request))
    with pytest.raises(HubConnectionError, match="HTTP 503"), translate_hub_errors(ref):
        raise overloaded
