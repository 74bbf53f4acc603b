"""Type stubs of the native module ``pairrm._pairrm`` (the Rust engine)."""

from os import PathLike
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

__version__: str

#: ``progress(done, total)``: forward passes finished and planned.
ProgressCallback = Callable[[int, int], object]
#: ``download(repo, revision, cache_dir, required, one_of, optional)``.
Downloader = Callable[[str, str, str, List[str], List[List[str]], List[str]], object]

class NotInCacheError(FileNotFoundError):
    """Files of a hub model are not in the local Hugging Face cache (and could not be
    downloaded)."""

    repo: str
    revision: str
    cache_dir: str
    #: The files missing ("a or b" for alternatives); empty when the whole revision is absent.
    missing: List[str]

def hub_cache_dir() -> Optional[str]:
    """The Hugging Face hub cache directory the environment points to, or None."""

class Engine:
    """A loaded PairRM model.

    Every method takes columns (one sequence per field, one item per request), runs all the
    forward passes together with the GIL released, and raises for the first invalid request
    (``ValueError``, naming it). ``progress(done, total)`` is called from the calling thread
    while the work runs. Ctrl-C stops the work and raises ``KeyboardInterrupt``. Results never
    depend on batching, order or thread count.
    """

    def __init__(
        self,
        model: str,
        *,
        revision: Optional[str] = None,
        cache_dir: Optional[Union[str, PathLike[str]]] = None,
        download: Union[Downloader, bool, None] = None,
        source_max_length: Optional[int] = None,
        candidate_max_length: Optional[int] = None,
        threads: int = 0,
        max_batch_tokens: Optional[int] = None,
        dtype: str = "f32",
        precision: str = "f32",
    ) -> None:
        """Loads ``model``: a local checkpoint directory (either layout) or a hub id in the
        Hugging Face cache (``cache_dir``, else the environment's). Files missing from the cache
        are fetched by ``download``: a callable that puts them there, ``True`` for the built-in
        downloader (``HF_ENDPOINT``, ``HF_TOKEN``, ``HF_HUB_OFFLINE`` honoured), ``None`` or
        ``False`` for none. ``threads=0``: one per core. ``dtype``: weight storage, ``"f32"``
        (exact), ``"f16"`` or ``"bf16"`` (arithmetic stays f32). ``precision``: the arithmetic of
        the linear layers, ``"f32"`` (exact), ``"bf16"`` or ``"int8"``."""
    @property
    def model_id(self) -> str:
        """The model as it was named when loaded."""
    @property
    def layout(self) -> str:
        """``"original"`` (LLM-Blender's layout) or ``"hf"`` (PairRM-hf)."""
    @property
    def dtype(self) -> str:
        """The weights' storage: ``"f32"``, ``"f16"`` or ``"bf16"``."""
    @property
    def precision(self) -> str:
        """The arithmetic of the linear layers: ``"f32"``, ``"bf16"`` or ``"int8"``."""
    @property
    def kernels(self) -> Dict[str, str]:
        """The compute kernels that run: ``{"linear", "attention", "level"}``."""
    @property
    def threads(self) -> int:
        """Threads of the engine's pool."""
    @property
    def source_max_length(self) -> int:
        """Token budget of the source part (instruction + input)."""
    @property
    def candidate_max_length(self) -> int:
        """Base token budget of each candidate part."""
    def encode(self, source: str, a: str, b: str, instruction: Optional[str] = None) -> List[int]:
        """The exact model input ids for ``instruction + source`` with ``a`` left, ``b`` right."""
    def compare(
        self,
        sources: Sequence[str],
        candidates_a: Sequence[str],
        candidates_b: Sequence[str],
        instructions: Optional[Sequence[str]] = None,
        mode: str = "both",
        progress: Optional[ProgressCallback] = None,
    ) -> List[float]:
        """``logit`` per pair, > 0 when A is better in every mode (``ab``, ``ba``, ``both`` or
        ``[A,B]``, ``[B,A]``, ``[A,B]+[B,A]``)."""
    def compare_conversations(
        self,
        conversations_a: Sequence[Sequence[Tuple[str, str]]],
        conversations_b: Sequence[Sequence[Tuple[str, str]]],
        mode: str = "both",
        progress: Optional[ProgressCallback] = None,
    ) -> List[float]:
        """``logit`` per pair of conversations of ``(role, content)`` turns."""
    def rank(
        self,
        sources: Sequence[str],
        candidates: Sequence[Sequence[str]],
        instructions: Optional[Sequence[str]] = None,
        progress: Optional[ProgressCallback] = None,
    ) -> Tuple[List[List[float]], List[List[int]]]:
        """Scores (higher is better) and ranks (1 is best) from the full comparison matrix."""
    def rank_with_ref(
        self,
        sources: Sequence[str],
        candidates: Sequence[Sequence[str]],
        instructions: Optional[Sequence[str]] = None,
        reference: str = "longest",
        references: Optional[Sequence[str]] = None,
        progress: Optional[ProgressCallback] = None,
    ) -> Tuple[List[List[float]], List[List[int]]]:
        """Scores and ranks against a reference candidate (a mode, or the given texts)."""
    def select(
        self,
        sources: Sequence[str],
        candidates: Sequence[Sequence[str]],
        instructions: Optional[Sequence[str]] = None,
        worst: bool = False,
        method: str = "bubble",
        seed: int = 0,
        progress: Optional[ProgressCallback] = None,
    ) -> List[List[int]]:
        """Candidate indices per request, the best (worst) first, by ``"full"`` ranks or one
        seeded ``"bubble"`` pass."""
