"""Which structures: selectors (titles or 1-based indices) and cross-validation folds."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from q2mm.errors import ConfigurationError

LOO_LIMIT = 12  # below this many structures cross-validation leaves one out per fold
DEFAULT_FOLDS = 5  # folds for larger training sets


def resolve_structures(selectors: Sequence[str | int], titles: Sequence[str], what: str) -> list[int]:
    """0-based indices of the structures named by ``selectors``.

    A selector is a 1-based index (an integer, or a string of digits) or a structure title
    (exact match). Unknown or repeated selectors raise ConfigurationError naming ``what``.
    """
    chosen: list[int] = []
    for selector in selectors:
        text = str(selector).strip()
        if text.isdigit():
            index = int(text) - 1
            if not 0 <= index < len(titles):
                raise ConfigurationError(
                    f"{what}: structure {text} out of range: the system has {len(titles)} structures, numbered from 1"
                )
        elif text in titles:
            index = list(titles).index(text)
        else:
            raise ConfigurationError(
                f"{what}: no structure titled {text!r}; expected a 1-based index or one of "
                + ", ".join(repr(t) for t in titles)
            )
        if index in chosen:
            raise ConfigurationError(f"{what}: structure {index + 1} ({titles[index]!r}) is named twice")
        chosen.append(index)
    return chosen


def n_folds(n_structures: int, folds: int | None) -> int:
    """The number of folds: ``folds`` if given, else leave-one-out below LOO_LIMIT structures."""
    if folds is None:
        folds = n_structures if n_structures < LOO_LIMIT else DEFAULT_FOLDS
    if not 2 <= folds <= n_structures:
        raise ConfigurationError(f"validation.folds={folds}: expected 2..{n_structures} for {n_structures} structures")
    return folds


def fold_holdout(n_structures: int, folds: int, fold: int) -> list[int]:
    """0-based indices held out by ``fold``: the fold-th of ``folds`` contiguous blocks
    (``numpy.array_split`` sizes: the first n % folds blocks are one larger)."""
    if not 0 <= fold < folds:
        raise ConfigurationError(f"validation.fold={fold}: expected 0..{folds - 1}")
    return [int(i) for i in np.array_split(np.arange(n_structures), folds)[fold]]
