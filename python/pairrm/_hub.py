"""Hub models: downloading what the Hugging Face cache lacks, through ``huggingface_hub`` when it is
installed (as llm_blender does, with the user's own hub configuration), else with pairrm's built-in
downloader."""

from __future__ import annotations

import logging
import os
from typing import Callable, List, Optional, Union

__all__ = ["downloader", "download"]

logger = logging.getLogger("pairrm")

_TRUE = {"1", "true", "yes", "on"}


def downloader() -> Union[Callable[..., None], bool]:
    """What fetches the files a hub model lacks in the cache, as the engine takes it:
    ``False`` when ``HF_HUB_OFFLINE`` is set (the cache alone), :func:`download` when
    ``huggingface_hub`` is installed, else ``True`` (the engine's built-in downloader, which reads
    the same ``HF_*`` variables and writes the same cache layout)."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE:
        return False
    try:
        import huggingface_hub  # noqa: F401
    except ImportError:
        return True
    return download


def _is_missing(error: BaseException) -> bool:
    """Whether ``error`` says that a file does not exist in the repo (HTTP 404 on a file)."""
    return any(cls.__name__ in ("EntryNotFoundError", "RemoteEntryNotFoundError") for cls in type(error).__mro__)


def download(
    repo: str,
    revision: str,
    cache_dir: str,
    required: List[str],
    one_of: List[List[str]],
    optional: List[str],
) -> None:
    """Puts files of ``repo`` at ``revision`` into the Hugging Face cache at ``cache_dir``: every
    ``required`` file, the first existing file of each ``one_of`` group, and whichever
    ``optional`` files the repo has. Called by the engine when the cache lacks them."""
    from huggingface_hub import hf_hub_download

    logger.warning("pairrm: downloading %s@%s into %s", repo, revision, cache_dir)

    def get(filename: str) -> None:
        hf_hub_download(repo_id=repo, filename=filename, revision=revision, cache_dir=cache_dir)

    for filename in required:
        get(filename)
    for group in one_of:
        for i, filename in enumerate(group):
            try:
                get(filename)
                break
            except Exception as error:
                if not _is_missing(error) or i == len(group) - 1:
                    raise
    for filename in optional:
        try:
            get(filename)
        except Exception as error:
            if not _is_missing(error):
                raise
