"""Scanning many suspects on a loopback hub with a real fingerprint and real models.

The owner is the zoo's digits MLP; pirated copies are fine-tunes and cheap piracy
transforms of it; innocents are independently trained models (other seeds) and a
fine-tune of one; broken and malicious repositories must each be reported with
their reason while the scan carries on.
"""

from __future__ import annotations

import json

import pytest
from adapters_models import save_model_as, tiny_model, write_file_saved_model
from hub_server import LoopbackHub, point_hf_at

import tafa_tf as tafa
from adapters import HubConnectionError, HubQuery, ScanEntry, load_suspect, scan
from tafa_tf import piracy, zoo

pytestmark = [pytest.mark.hub, pytest.mark.slow]

KIND = "digits_mlp"
MAX_BYTES = 1_500_000

# ref -> expected error type, for the repositories that must fail (wrong-input: the
# fingerprint does not fit it, recorded as not applicable with the reason).
EXPECTED_ERRORS = {
    "hf://broken/empty": "NoModelError",
    "hf://broken/truncated": "ModelLoadError",
    "hf://broken/weights-only": "NoModelError",
    "hf://broken/wrong-input": "SuspectShapeError",
    "hf://broken/does-not-exist": "RepoNotFoundError",
    "hf://pirate/finetune-keras@no-such-branch": "RevisionNotFoundError",
    "hf://evil/lambda-folder": "UnsafeModelError",
    "hf://evil/lambda-keras": "UnsafeModelError",
    "hf://evil/writefile": "UnsafeModelError",
    "hf://big/model": "ModelTooLargeError",
}


@pytest.fixture(scope="module")
def owner(trained):
    return trained(KIND, seed=0)


@pytest.fixture(scope="module")
def fp(owner):
    return tafa.fingerprint(owner, seed=0)


@pytest.fixture(scope="module")
def zoo_hub(tmp_path_factory, trained, owner):
    """20 repositories: 6 pirated, 4 innocent, 6 broken, 3 malicious, 1 oversize."""
    import keras

    models = tmp_path_factory.mktemp("scan_models")
    server = LoopbackHub(tmp_path_factory.mktemp("scan_hub"))
    data = zoo.data_for(KIND)
    innocent1, innocent2 = trained(KIND, seed=1), trained(KIND, seed=2)

    def tune(model, seed, lr=1e-3):
        return zoo.fine_tune(model, KIND, data, epochs=3, learning_rate=lr, seed=seed)

    uploads = {
        "pirate/exact-h5": (piracy.copy_model(owner), "h5"),
        "pirate/finetune-keras": (tune(owner, 1), "keras"),
        "pirate/finetune-folder": (tune(owner, 2, lr=3e-3), "keras_folder"),
        "pirate/finetune-savedmodel": (tune(owner, 3), "saved_model"),
        "pirate/noise": (piracy.add_noise(owner, 0.05, seed=0), "keras"),
        "pirate/permuted": (piracy.permute_neurons(owner, seed=0), "keras"),
        "indep/seed1-keras": (innocent1, "keras"),
        "indep/seed2-folder": (innocent2, "keras_folder"),
        "indep/seed1-finetune-h5": (tune(innocent1, 4), "h5"),
        "indep/seed2-savedmodel": (innocent2, "saved_model"),
        "broken/wrong-input": (tiny_model(0), "keras"),
        "evil/lambda-folder": (tiny_model(1, lambda_layer=True), "keras_folder"),
        "evil/lambda-keras": (tiny_model(2, lambda_layer=True), "keras"),
    }
    keras.utils.set_random_seed(0)
    uploads["big/model"] = (
        keras.Sequential(
            [
                keras.Input((64,)),
                keras.layers.Dense(8192, activation="relu"),
                keras.layers.Dense(10),
            ]
        ),
        "keras",
    )
    server.shas = {}
    for repo_id, (model, fmt) in uploads.items():
        saved = save_model_as(model, fmt, models / repo_id)
        server.shas[repo_id] = server.add_repo(
            repo_id, {"README.md": f"# {repo_id}\n", "" if saved.is_dir() else saved.name: saved}
        )
    owner.save_weights(models / "owner.weights.h5")
    server.add_repo("broken/weights-only", {"model.weights.h5": models / "owner.weights.h5"})
    server.add_repo("broken/empty", {"README.md": "no model\n"})
    server.add_repo("broken/truncated", {"model.keras": b"PK\x03\x04cut short"})
    server.pwned = models / "pwned.txt"
    server.add_repo(
        "evil/writefile", {"": write_file_saved_model(models / "evil_sm", server.pwned)}
    )
    server.start()
    yield server
    server.stop()


def _refs() -> list[str]:
    pirated = [
        f"hf://pirate/{n}"
        for n in (
            "exact-h5",
            "finetune-keras",
            "finetune-folder",
            "finetune-savedmodel",
            "noise",
            "permuted",
        )
    ]
    innocent = [
        f"hf://indep/{n}"
        for n in ("seed1-keras", "seed2-folder", "seed1-finetune-h5", "seed2-savedmodel")
    ]
    return pirated + innocent + list(EXPECTED_ERRORS)


def test_verify_a_pinned_hub_suspect_carries_the_resolved_sha(zoo_hub, fp, tmp_path, monkeypatch):
    point_hf_at(monkeypatch, zoo_hub, tmp_path / "hf")
    sha = zoo_hub.shas["pirate/finetune-keras"]
    suspect = load_suspect(f"hf://pirate/finetune-keras@{sha}")
    report = tafa.verify(fp, suspect)
    assert report.ok and report.pirated is True
    assert report.source["commit_sha"] == sha and report.source["source"].endswith(sha)
    innocent = tafa.verify(
        fp, load_suspect(f"hf://indep/seed1-keras@{zoo_hub.shas['indep/seed1-keras']}")
    )
    assert innocent.score < report.score


def test_scan_of_20_repos_ranks_pirated_above_innocent_and_reports_every_failure(
    zoo_hub, fp, tmp_path, monkeypatch
):
    point_hf_at(monkeypatch, zoo_hub, tmp_path / "hf")
    refs = _refs()
    assert len(refs) == 20
    seen: list[ScanEntry] = []
    store = tmp_path / "hub.db"
    result = scan(
        fp, refs, max_workers=4, max_bytes=MAX_BYTES, progress=False, on_result=seen.append,
        store=store,
    )

    assert sorted(e.ref for e in seen) == sorted(refs)
    assert sorted(e.ref for e in result.entries) == sorted(refs)
    by_ref = {e.ref: e for e in result.entries}
    order = [e.ref for e in result.entries]
    pirated = [r for r in refs if r.startswith("hf://pirate/") and "@" not in r]
    innocent = [r for r in refs if r.startswith("hf://indep/")]
    for ref in pirated + innocent:
        assert by_ref[ref].ok, (ref, by_ref[ref].error)
        assert by_ref[ref].commit_sha == zoo_hub.shas[ref[len("hf://") :]]
        assert by_ref[ref].content_sha == by_ref[ref].commit_sha
        assert by_ref[ref].fetch_seconds > 0 and by_ref[ref].load_seconds > 0
    assert max(order.index(r) for r in pirated) < min(order.index(r) for r in innocent), (
        result.table()
    )
    assert min(by_ref[r].score for r in pirated) > max(by_ref[r].score for r in innocent)
    for ref, error_type in EXPECTED_ERRORS.items():
        entry = by_ref[ref]
        status = "not_applicable" if error_type == "SuspectShapeError" else "error"
        assert (entry.status, entry.error_type) == (status, error_type), (ref, entry.error)
        assert "Received" in entry.error, entry.error
    assert not zoo_hub.pwned.exists()

    table = result.table()
    assert table.splitlines()[0].split()[:4] == ["#", "score", "verdict", "status"]
    assert all(ref in table for ref in refs)
    as_json = json.loads(result.to_json())
    assert as_json["scanned"] == 20 and as_json["errors"] == len(EXPECTED_ERRORS) - 1
    assert as_json["not_applicable"] == 1
    assert [e["ref"] for e in as_json["entries"]] == order
    again = scan(fp, refs, max_bytes=MAX_BYTES, progress=False, store=store, on_result=seen.append)
    assert len(seen) == 20 and [e.ref for e in again.entries] == order  # nothing redone


def test_server_stopping_mid_scan_fails_the_rest_cleanly(zoo_hub, fp, tmp_path, monkeypatch):
    # A second server over the same repositories, so stopping it spares the others.
    doomed = LoopbackHub(tmp_path / "doomed", mirrors=zoo_hub.mirrors)
    doomed.start()
    try:
        point_hf_at(monkeypatch, doomed, tmp_path / "hf")
        refs = [
            f"hf://pirate/{n}"
            for n in ("exact-h5", "finetune-keras", "noise", "permuted", "finetune-folder")
        ]

        def stop_after_first(entry: ScanEntry) -> None:
            doomed.stop()

        result = scan(fp, refs, max_workers=1, progress=False, on_result=stop_after_first)
    finally:
        doomed.stop()
    assert sorted(e.ref for e in result.entries) == sorted(refs)
    failed = [e for e in result.entries if not e.ok]
    assert result.entries[0].ok and len(failed) >= len(refs) - 2
    for entry in failed:
        assert entry.error_type == "HubConnectionError", entry.error
        assert "Received" in entry.error


def test_hub_listing_is_reported_unsupported_by_olah(zoo_hub, fp, tmp_path, monkeypatch):
    point_hf_at(monkeypatch, zoo_hub, tmp_path / "hf")
    with pytest.raises(HubConnectionError, match="pass a list of hf:// refs"):
        scan(fp, HubQuery(search="pirate"), progress=False)


def test_scan_arguments_are_checked(fp):
    with pytest.raises(ValueError, match="max_workers"):
        scan(fp, ["x"], max_workers=0)
    with pytest.raises(TypeError, match="list of references"):
        scan(fp, "hf://org/a")
