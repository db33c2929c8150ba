"""Imports from the Hugging Face Hub. Many servers have no internet access, so every Hub call
starts with a short reachability probe and fails fast with a clear message."""

import concurrent.futures
import shutil
from pathlib import Path

from huggingface_hub import HfApi, constants, errors, snapshot_download
from huggingface_hub.utils import get_session

from catalog.imports.common import Progress, report, staging
from catalog.imports.gguf import import_gguf_file
from catalog.imports.hf import import_hf_folder
from catalog.services import CatalogError

PROBE_TIMEOUT = 8.0
UNREACHABLE = "the Hugging Face Hub is not reachable from this server"
# Only these are downloaded: pickle weights and code in a repo are never fetched.
ALLOW_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.md", "*.jinja", "*.gguf"]


def _endpoint() -> str:
    return constants.ENDPOINT


def hub_info(*, repo_id: str, revision: str = "main", repo_type: str = "model"):
    """Model/dataset info from the Hub, or CatalogError within about PROBE_TIMEOUT seconds."""
    repo_id, revision = repo_id.strip(), (revision or "main").strip()
    if not repo_id or len(repo_id) > 200 or repo_id.count("/") > 1 or ".." in repo_id:
        raise CatalogError(f"{repo_id!r} is not a Hub repository id (owner/name)")
    if constants.HF_HUB_OFFLINE:
        raise CatalogError(f"{UNREACHABLE} (HF_HUB_OFFLINE is set)")
    api = HfApi(endpoint=_endpoint())
    call = api.model_info if repo_type == "model" else api.dataset_info
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        future = pool.submit(call, repo_id, revision=revision, timeout=PROBE_TIMEOUT)
        return future.result(timeout=PROBE_TIMEOUT + 2)
    except concurrent.futures.TimeoutError:
        raise CatalogError(f"{UNREACHABLE} (no answer from {_endpoint()} in {PROBE_TIMEOUT:g} s)") from None
    except errors.OfflineModeIsEnabled:
        raise CatalogError(f"{UNREACHABLE} (offline mode)") from None
    except errors.GatedRepoError:
        raise CatalogError(f"{repo_id} is gated: accept its terms and configure a token") from None
    except errors.RevisionNotFoundError:
        raise CatalogError(f"{repo_id} has no revision {revision!r}") from None
    except errors.RepositoryNotFoundError:
        raise CatalogError(f"the Hub has no {repo_type} repository {repo_id!r}") from None
    except errors.HfHubHTTPError as exc:
        raise CatalogError(f"the Hugging Face Hub answered with an error: {exc}") from None
    except (OSError, ValueError) as exc:
        raise CatalogError(f"{UNREACHABLE} ({exc})") from None
    except Exception as exc:  # httpx transport errors (ConnectError, timeouts) land here
        if "httpx" in type(exc).__module__ or "Connect" in type(exc).__name__:
            raise CatalogError(f"{UNREACHABLE} ({exc})") from None
        raise
    finally:
        pool.shutdown(wait=False)


def hub_reachable() -> None:
    """CatalogError unless the Hub answers at all, within about PROBE_TIMEOUT seconds: for a
    caller with no repository of its own to ask about (lm-eval's built-in tasks, whose datasets
    lm-eval fetches itself)."""
    if constants.HF_HUB_OFFLINE:
        raise CatalogError(f"{UNREACHABLE} (HF_HUB_OFFLINE is set)")
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        future = pool.submit(get_session().head, _endpoint(), timeout=PROBE_TIMEOUT)
        future.result(timeout=PROBE_TIMEOUT + 2)
    except concurrent.futures.TimeoutError:
        raise CatalogError(f"{UNREACHABLE} (no answer from {_endpoint()} in {PROBE_TIMEOUT:g} s)") from None
    except Exception as exc:  # any transport error: refused, no route, DNS, TLS
        raise CatalogError(f"{UNREACHABLE} ({type(exc).__name__}: {exc})") from None
    finally:
        pool.shutdown(wait=False)


def import_hub(*, team_id: int, user_id: int | None, repo_id: str, revision: str = "main",
               name: str = "", progress: Progress | None = None):
    """Downloads a Hub model repository (safetensors or GGUF only) and imports it."""
    info = hub_info(repo_id=repo_id, revision=revision)
    sha = getattr(info, "sha", None) or revision
    source = f"hub:{repo_id}@{sha}"
    report(progress, 0.05, "downloading")
    with staging("hub") as staged:
        try:
            snapshot_download(repo_id, revision=sha, local_dir=str(staged / "repo"),
                              allow_patterns=ALLOW_PATTERNS, etag_timeout=PROBE_TIMEOUT,
                              endpoint=_endpoint())
        except Exception as exc:
            raise CatalogError(f"downloading {repo_id} failed: {exc}") from None
        root = staged / "repo"
        shutil.rmtree(root / ".cache", ignore_errors=True)  # huggingface_hub's bookkeeping
        name = name or repo_id.split("/")[-1]
        ggufs = sorted(root.glob("*.gguf"))
        if not (root / "config.json").exists() and ggufs:
            return import_gguf_file(team_id=team_id, user_id=user_id, path=str(ggufs[0]),
                                    name=name, consume=True, source=source, progress=progress)
        return import_hf_folder(team_id=team_id, user_id=user_id, folder=str(Path(root)),
                                name=name, consume=True, source=source, progress=progress)
