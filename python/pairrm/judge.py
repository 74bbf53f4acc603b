"""``pairrm.PairRMJudge``: TRL's ``PairRMJudge`` (a pairwise judge) over :class:`pairrm.Blender`."""

from __future__ import annotations

from typing import Any, List, Sequence, Union

import numpy as np

from . import _validate
from .blender import Blender

__all__ = ["PairRMJudge"]


class PairRMJudge:
    """A pairwise judge with TRL's ``PairRMJudge.judge`` semantics, without torch.

    Usable wherever TRL expects a pairwise judge (e.g. ``OnlineDPOTrainer(judge=...)``):
    ``judge(prompts, completions)`` tells, for each prompt, which of its two completions PairRM
    prefers.

    Args:
        model: the PairRM checkpoint: a hub id or a local directory (see
            :meth:`pairrm.Blender.loadranker`).
        **loadranker_kwargs: passed to :meth:`pairrm.Blender.loadranker` (``threads``,
            ``cache_dir``, ...).

    Example:
        >>> judge = PairRMJudge()
        >>> judge.judge(["Translate 'hello' to French", "What's the capital of Japan?"],
        ...             [["Bonjour", "Salut"], ["Kyoto", "Tokyo"]])
        [0, 1]
    """

    def __init__(self, model: str = "llm-blender/PairRM", **loadranker_kwargs: Any) -> None:
        self.blender = Blender(use_tqdm=False)
        self.blender.loadranker(model, **loadranker_kwargs)

    def judge(
        self,
        prompts: Sequence[str],
        completions: Sequence[Sequence[str]],
        shuffle_order: bool = True,
        return_scores: bool = False,
        temperature: float = 1.0,
    ) -> List[Union[int, float]]:
        """Judges the completion pairs of the prompts.

        Args:
            prompts: the prompts.
            completions: two completions per prompt.
            shuffle_order: swap each pair at random (``numpy.random``, as TRL) before judging and
                swap the answer back. PairRM's full comparison scores both orders, so the result
                is the same either way here.
            return_scores: return the probability that the first completion is better
                (softmax of the two rank scores over ``temperature``) instead of its rank.
            temperature: divides the scores before the softmax (``return_scores`` only).

        Returns:
            Per prompt: ``0`` if the first completion is preferred (or both tie), ``1`` if the
            second is; or, with ``return_scores``, the first completion's probability.

        Raises:
            ValueError: a prompt does not have exactly two completions, the lengths differ, or
                ``temperature`` is not positive.
        """
        prompts = _validate.strings(prompts, "prompts")
        pairs = _validate.string_lists(completions, "completions")
        _validate.same_length(("prompts", prompts), ("completions", pairs))
        for i, pair in enumerate(pairs):
            if len(pair) != 2:
                raise ValueError(f"PairRM judge requires exactly 2 completions per prompt; completions[{i}] has {len(pair)}")
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
            raise TypeError(f"temperature must be a number, not {type(temperature).__name__}")
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        if not prompts:
            return []
        if shuffle_order:
            flip = np.random.choice([True, False], size=len(prompts))
            pairs = [pair[::-1] if f else pair for f, pair in zip(flip, pairs)]
        ranks = self.blender.rank(prompts, pairs, return_scores=return_scores, disable_tqdm=True)
        if return_scores:
            ranks /= temperature
        else:
            ranks -= 1
        if shuffle_order:
            ranks[flip] = ranks[flip][:, ::-1]
        if return_scores:
            shifted = np.exp(ranks - np.amax(ranks, axis=-1, keepdims=True))
            probs = shifted / np.sum(shifted, axis=-1, keepdims=True)
            return probs[:, 0].tolist()
        return ranks[:, 0].tolist()
