"""Hub ids: the Hugging Face cache, llm_blender's download folder, and downloading what the cache
lacks through huggingface_hub (a stand-in module here: the tests never touch the network)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import pairrm
from conftest import MODELS, REPO, load, make_hub_cache

TINY_HF = MODELS / "tiny-hf"
HF_FILES = ["config.json", "model.safetensors", "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json"]


def reference_scores() -> Any:
    return load("tiny-hf").rank(["q"], [["a", "bb", "ccc"]], return_scores=True)


def test_hub_id_from_the_environments_cache(tmp_path: Path, monkeypatch: Any) -> None:
    cache = make_hub_cache(tmp_path, {"test/tiny-hf": {f: TINY_HF / f for f in HF_FILES}})
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    assert pairrm.hub_cache_dir() == str(cache)
    blender = pairrm.Blender(use_tqdm=False)
    blender.loadranker("test/tiny-hf", download=False)
    assert blender.engine.layout == "hf"
    assert blender.rank(["q"], [["a", "bb", "ccc"]], return_scores=True).tobytes() == reference_scores().tobytes()
    revision = pairrm.Blender(use_tqdm=False)
    revision.loadranker("test/tiny-hf", revision="0123456789abcdef0123456789abcdef01234567", download=False)
    with pytest.raises(pairrm.NotInCacheError, match="v2"):
        pairrm.Blender().loadranker("test/tiny-hf", revision="v2", download=False)


def test_cache_dir_argument_and_llm_blenders_download_folder(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "elsewhere"))
    cache = make_hub_cache(tmp_path, {"test/tiny-hf": {f: TINY_HF / f for f in HF_FILES}})
    blender = pairrm.Blender(use_tqdm=False)
    blender.loadranker("test/tiny-hf", cache_dir=cache, download=False)
    # llm_blender downloads `org/name` as a plain folder <cache_dir>/org/name: found as well.
    legacy = tmp_path / "legacy"
    shutil.copytree(TINY_HF, legacy / "llm-blender" / "PairRM")
    blender.loadranker("llm-blender/PairRM", cache_dir=str(legacy), download=False)
    assert blender.engine.model_id == str(legacy / "llm-blender" / "PairRM")
    assert blender.rank(["q"], [["a", "bb", "ccc"]], return_scores=True).tobytes() == reference_scores().tobytes()


FAKE_HUB = textwrap.dedent(
    '''
    """A stand-in for huggingface_hub: "downloads" from the folder in FAKE_HUB_SOURCE."""
    import os, shutil
    from pathlib import Path

    CALLS = []

    class EntryNotFoundError(Exception):
        pass

    def hf_hub_download(repo_id, filename, revision, cache_dir):
        CALLS.append((repo_id, filename, revision))
        if os.environ.get("FAKE_HUB_FAIL"):
            raise ConnectionError("network is down")
        source = Path(os.environ["FAKE_HUB_SOURCE"]) / filename
        if not source.is_file():
            raise EntryNotFoundError(filename)
        commit = "fedcba9876543210fedcba9876543210fedcba98"
        base = Path(cache_dir) / ("models--" + repo_id.replace("/", "--"))
        (base / "snapshots" / commit).mkdir(parents=True, exist_ok=True)
        (base / "refs").mkdir(exist_ok=True)
        (base / "refs" / revision).write_text(commit)
        shutil.copy(source, base / "snapshots" / commit / filename)
        return str(base / "snapshots" / commit / filename)
    '''
)


@pytest.fixture
def fake_hub(tmp_path: Path, monkeypatch: Any) -> Any:
    package = tmp_path / "site" / "huggingface_hub"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(FAKE_HUB)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(__import__("sys").modules, "huggingface_hub", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("FAKE_HUB_SOURCE", str(TINY_HF))
    import huggingface_hub

    return huggingface_hub


def test_missing_files_are_downloaded_with_huggingface_hub(tmp_path: Path, fake_hub: Any) -> None:
    cache = tmp_path / "cache"
    blender = pairrm.Blender(use_tqdm=False)
    blender.loadranker("test/tiny-hf", cache_dir=str(cache))
    assert blender.rank(["q"], [["a", "bb", "ccc"]], return_scores=True).tobytes() == reference_scores().tobytes()
    fetched = [f for _, f, _ in fake_hub.CALLS]
    assert "config.json" in fetched and "model.safetensors" in fetched and "tokenizer.json" in fetched
    assert all(repo == "test/tiny-hf" and revision == "main" for repo, _, revision in fake_hub.CALLS)
    fake_hub.CALLS.clear()
    pairrm.Blender().loadranker("test/tiny-hf", cache_dir=str(cache))
    assert fake_hub.CALLS == []  # everything is in the cache now


def test_download_errors_and_offline_mode(tmp_path: Path, fake_hub: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("FAKE_HUB_FAIL", "1")
    with pytest.raises(ConnectionError, match="network is down"):  # the downloader's own exception
        pairrm.Blender().loadranker("test/tiny-hf", cache_dir=str(tmp_path / "c1"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    fake_hub.CALLS.clear()
    with pytest.raises(pairrm.NotInCacheError):
        pairrm.Blender().loadranker("test/tiny-hf", cache_dir=str(tmp_path / "c2"))
    assert fake_hub.CALLS == []
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("FAKE_HUB_FAIL")
    monkeypatch.setenv("FAKE_HUB_SOURCE", str(tmp_path / "empty"))
    with pytest.raises(Exception, match="config.json"):  # the file does not exist in the repo
        pairrm.Blender().loadranker("test/tiny-hf", cache_dir=str(tmp_path / "c3"))


@pytest.fixture
def fake_hub_server(tmp_path: Path) -> Any:
    """The repo's `fake-hub` binary (a loopback server with the hub's URL layout) serving
    ``test/tiny-hf``; yields its URL."""
    binary = Path(os.environ.get("PAIRRM_CLI", str(REPO / "target" / "debug" / "pairrm"))).parent / "fake-hub"
    if not os.access(binary, os.X_OK):
        pytest.skip("the fake-hub binary is not built: run `cargo build -p fake-hub` (scripts/test.sh does)")
    server = subprocess.Popen(
        [str(binary), "--repo", f"test/tiny-hf={TINY_HF}"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert server.stdout is not None
        yield server.stdout.readline().strip()
    finally:
        server.kill()
        server.wait()


def test_without_huggingface_hub_the_builtin_downloader_fetches(
    tmp_path: Path, fake_hub_server: str, monkeypatch: Any, capfd: Any
) -> None:
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # `import huggingface_hub` fails
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", fake_hub_server)
    cache = tmp_path / "cache"
    blender = pairrm.Blender(use_tqdm=False)
    blender.loadranker("test/tiny-hf", cache_dir=str(cache))
    assert blender.rank(["q"], [["a", "bb", "ccc"]], return_scores=True).tobytes() == reference_scores().tobytes()
    assert "downloading test/tiny-hf/model.safetensors" in capfd.readouterr().err
    # The huggingface_hub cache layout: refs/main names the snapshot, files are links to blobs.
    repo = cache / "models--test--tiny-hf"
    commit = (repo / "refs" / "main").read_text().strip()
    assert (repo / "snapshots" / commit / "model.safetensors").is_file()
    assert any((repo / "blobs").iterdir())
    # Second time: from the cache, even with the hub gone.
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    again = pairrm.Blender(use_tqdm=False)
    again.loadranker("test/tiny-hf", cache_dir=str(cache))
    assert again.engine.model_id == "test/tiny-hf"
    # A repo the hub does not have: a clear error naming it.
    monkeypatch.setenv("HF_ENDPOINT", fake_hub_server)
    with pytest.raises(Exception, match="test/absent"):
        pairrm.Blender().loadranker("test/absent", cache_dir=str(cache))


def test_download_argument_is_checked() -> None:
    with pytest.raises(TypeError, match="download must be"):
        pairrm.Engine(str(TINY_HF), download="yes")  # type: ignore[arg-type]
