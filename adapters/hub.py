"""Fetching a suspect from the Hugging Face Hub (or any hub-compatible server).

Settings follow huggingface_hub's environment variables, read when a download
starts (not at import), so a process may point at another endpoint or cache:
HF_ENDPOINT, HF_HOME / HF_HUB_CACHE, HF_TOKEN and HF_HUB_OFFLINE.

Online, the revision is first resolved to a full commit sha and the file list with
sizes is read; the model's files are chosen, their announced sizes checked against
the limit, and only those files are downloaded, pinned to the resolved sha. Offline,
the cached snapshot of the revision is used.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from adapters.errors import (
    AdapterError,
    GatedRepoError,
    HubConnectionError,
    NoModelError,
    RepoNotFoundError,
    RevisionNotFoundError,
    first_line,
)
from adapters.formats import ModelLayout, find_model
from adapters.safety import check_size

HF_SCHEME = "hf://"
DEFAULT_REVISION = "main"
_TRUE = {"1", "on", "yes", "true"}


@dataclass(frozen=True)
class HubRef:
    """A parsed ``hf://ORG/NAME[@REVISION]`` reference."""

    repo_id: str
    revision: str | None = None

    def __str__(self) -> str:
        return f"{HF_SCHEME}{self.repo_id}" + (f"@{self.revision}" if self.revision else "")


@dataclass(frozen=True)
class HubSnapshot:
    """Downloaded model files: the local folder, what is in it and the commit it is."""

    folder: Path
    layout: ModelLayout
    commit_sha: str
    announced_bytes: int | None


def is_hub_ref(ref: str) -> bool:
    """Whether ``ref`` names a Hub repository (``hf://...``)."""
    return isinstance(ref, str) and ref.startswith(HF_SCHEME)


def parse_hub_ref(ref: str) -> HubRef:
    """Parse ``hf://ORG/NAME[@REVISION]``.

    Args:
        ref: the reference; REVISION is a branch, tag or commit sha.

    Returns:
        The HubRef.

    Raises:
        ValueError: the reference is malformed.
    """
    body = ref[len(HF_SCHEME) :] if is_hub_ref(ref) else ""
    repo_id, _, revision = body.partition("@")
    parts = repo_id.split("/")
    if len(parts) != 2 or not all(parts) or (_ and not revision):
        raise ValueError(
            "A Hub reference must look like hf://ORG/NAME or hf://ORG/NAME@REVISION. "
            f"Received: ref={ref!r}"
        )
    return HubRef(repo_id, revision or None)


def hub_settings() -> dict[str, object]:
    """The Hub settings in effect now, from huggingface_hub's environment variables.

    Returns:
        ``{"endpoint", "cache_dir", "offline"}``; None values mean huggingface_hub's
        own defaults.
    """
    cache = os.environ.get("HF_HUB_CACHE")
    if cache is None and os.environ.get("HF_HOME"):
        cache = os.path.join(os.environ["HF_HOME"], "hub")
    return {
        "endpoint": os.environ.get("HF_ENDPOINT") or None,
        "cache_dir": cache,
        "offline": os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE,
    }


def fetch(
    ref: HubRef,
    *,
    max_bytes: int,
    token: str | None = None,
    filename: str | None = None,
    progress: bool = True,
) -> HubSnapshot:
    """Download the model files of a Hub repository at a revision.

    Args:
        ref: the repository and revision.
        max_bytes: the limit on the model files' total size, checked before download
            from the sizes the Hub announces.
        token: a Hub token; None uses HF_TOKEN or the stored login.
        filename: the model file or folder inside the repo, if several are present.
        progress: show huggingface_hub's download progress bars.

    Returns:
        A HubSnapshot of the downloaded files.

    Raises:
        RepoNotFoundError, RevisionNotFoundError, GatedRepoError, NoModelError,
        ModelTooLargeError, HubConnectionError.
    """
    from huggingface_hub import HfApi, get_hf_file_metadata, hf_hub_url, snapshot_download

    settings = hub_settings()
    endpoint, cache_dir = settings["endpoint"], settings["cache_dir"]
    revision = ref.revision or DEFAULT_REVISION
    api = HfApi(endpoint=endpoint, token=token)  # type: ignore[arg-type]
    with translate_hub_errors(ref, api):
        if settings["offline"]:
            folder = cached_snapshot(ref.repo_id, revision, cache_dir)  # type: ignore[arg-type]
            files = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]
            layout = find_model(files, where=f"the cached snapshot of {ref}", filename=filename)
            return HubSnapshot(folder, layout, folder.name, None)

        info = api.model_info(ref.repo_id, revision=revision, files_metadata=True)
        sha = str(info.sha)
        siblings = info.siblings or []
        layout = find_model(
            [s.rfilename for s in siblings], where=f"the Hub repository {ref}", filename=filename
        )
        sizes = {s.rfilename: s.size for s in siblings}
        unknown = [p for p in layout.files if sizes.get(p) is None]
        for path in unknown:
            # Servers that omit sizes from the listing still answer a HEAD per file.
            url = hf_hub_url(ref.repo_id, path, revision=sha, endpoint=endpoint)  # type: ignore[arg-type]
            sizes[path] = get_hf_file_metadata(url, token=token).size
        announced = sum(int(sizes.get(p) or 0) for p in layout.files)
        check_size(announced, max_bytes, str(ref))
        folder = Path(
            snapshot_download(
                ref.repo_id,
                # By name, not sha, so the cache records the branch for offline use.
                revision=revision,
                cache_dir=cache_dir,  # type: ignore[arg-type]
                allow_patterns=list(layout.files),
                token=token,
                endpoint=endpoint,  # type: ignore[arg-type]
                tqdm_class=None if progress else _silent_tqdm(),
            )
        )
    # The folder is named after the commit it holds: the truth if the branch moved
    # since model_info (sizes are checked again on disk before loading).
    return HubSnapshot(folder, layout, folder.name, announced)


def cached_snapshot(repo_id: str, revision: str, cache_dir: str | None) -> Path:
    """The cached snapshot folder of ``repo_id`` at a branch, tag or (short) commit sha.

    Offline, huggingface_hub insists that a snapshot holds every file of the repo;
    a suspect's snapshot holds only the model's files, so it is looked up here.

    Args:
        repo_id: ``ORG/NAME``.
        revision: a ref name or a commit sha (7 characters at least).
        cache_dir: the Hub cache folder; None is huggingface_hub's default.

    Returns:
        The snapshot folder (named after its full commit sha).

    Raises:
        HubConnectionError: the cache holds no snapshot of that revision.
    """
    from huggingface_hub import CacheNotFound, scan_cache_dir

    try:
        cache = scan_cache_dir(cache_dir)
    except CacheNotFound:
        cache = None
    for repo in cache.repos if cache is not None else ():
        if repo.repo_id != repo_id or repo.repo_type != "model":
            continue
        if revision in repo.refs:
            return Path(repo.refs[revision].snapshot_path)
        for cached in repo.revisions:
            if len(revision) >= 7 and cached.commit_hash.startswith(revision):
                return Path(cached.snapshot_path)
    raise HubConnectionError(
        f"Offline mode is on (HF_HUB_OFFLINE) and the cache has no snapshot of "
        f"{repo_id} at {revision!r}; download it once online, or unset HF_HUB_OFFLINE. "
        f"Received: repo_id={repo_id!r}, revision={revision!r}, cache_dir={cache_dir!r}"
    )


def _silent_tqdm() -> type:
    from tqdm.auto import tqdm

    class SilentTqdm(tqdm):  # type: ignore[misc, valid-type]
        def __init__(self, *args: object, **kwargs: object) -> None:
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

    return SilentTqdm


@contextlib.contextmanager
def translate_hub_errors(ref: HubRef, api: object | None = None) -> Iterator[None]:
    """Turn huggingface_hub and HTTP errors into the adapters' typed errors.

    Args:
        ref: the reference being fetched, for messages.
        api: an HfApi, used to tell a missing revision from a missing repository
            (some servers answer both with 404 on the repository).

    Raises:
        The AdapterError that fits, chained to the original error.
    """
    from huggingface_hub import errors as hf

    try:
        yield
    except AdapterError:
        raise
    except hf.GatedRepoError as e:
        raise GatedRepoError(
            f"The repository {ref.repo_id} is gated or private and this token has no "
            f"access. Request access on the Hub, then set HF_TOKEN or pass token=. "
            f"Received: ref={str(ref)!r}"
        ) from e
    except hf.RevisionNotFoundError as e:
        raise _revision_missing(ref) from e
    except hf.RepositoryNotFoundError as e:
        if ref.revision and _repo_exists_at_default(ref, api):
            raise _revision_missing(ref) from e
        raise RepoNotFoundError(
            f"The repository {ref.repo_id} was not found on the Hub; check the name, or if "
            f"it is private set HF_TOKEN (or pass token=). Received: ref={str(ref)!r}"
        ) from e
    except (hf.OfflineModeIsEnabled, hf.LocalEntryNotFoundError) as e:
        raise HubConnectionError(
            f"Could not reach the Hub for {ref} and the local cache has no copy of this "
            f"revision. Check the network and HF_ENDPOINT, or unset HF_HUB_OFFLINE. "
            f"Received: {type(e).__name__}: {first_line(e)}"
        ) from e
    except hf.EntryNotFoundError as e:
        raise NoModelError(
            f"A model file listed in {ref} could not be downloaded. Received: {first_line(e)}"
        ) from e
    except hf.HfHubHTTPError as e:
        status = getattr(getattr(e, "response", None), "status_code", None)
        if status in (401, 403):
            raise GatedRepoError(
                f"The Hub refused access to {ref} (HTTP {status}). Set HF_TOKEN or pass "
                f"token= with access to this repository. Received: {first_line(e)}"
            ) from e
        raise HubConnectionError(
            f"The Hub answered an error for {ref} (HTTP {status}); retry later. "
            f"Received: {first_line(e)}"
        ) from e
    except (hf.HTTPError, ConnectionError, TimeoutError) as e:
        raise HubConnectionError(
            f"Could not reach the Hub for {ref}; check the network and HF_ENDPOINT. "
            f"Received: {type(e).__name__}: {first_line(e)}"
        ) from e


def _revision_missing(ref: HubRef) -> RevisionNotFoundError:
    return RevisionNotFoundError(
        f"The repository {ref.repo_id} has no revision {ref.revision!r}; pass an existing "
        f"branch, tag or commit sha. Received: ref={str(ref)!r}"
    )


def _repo_exists_at_default(ref: HubRef, api: object | None) -> bool:
    if api is None:
        return False
    from huggingface_hub import errors as hf

    try:
        api.model_info(ref.repo_id, revision=DEFAULT_REVISION)  # type: ignore[attr-defined]
    except (hf.HTTPError, OSError):
        return False
    return True
