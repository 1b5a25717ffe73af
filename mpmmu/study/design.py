"""Reader-study designs, rating scales and each reader's seeded reading order.

Two designs are supported:

- ``sequential``: one session; each case is read unaided, the read is locked, then the AI result
  appears and the same case is read again aided.
- ``crossover``: two sessions separated by a washout of ``washout_days``. Each reader's cases are
  split at random into halves A and B. Session 1 reads half A unaided and half B aided, and
  session 2 reads half A aided and half B unaided. So every reader reads every case in both
  modes, and each session mixes both modes.

Each reader's case order is drawn from a generator seeded by the study seed and the reader's
position, and that seed is stored with the reader so the order can be reproduced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from mpmmu.errors import StudyStoreError

Design = Literal["sequential", "crossover"]
Mode = Literal["unaided", "aided"]
Condition = Literal["sequential", "unaided", "aided"]

DESIGNS: tuple[str, ...] = ("sequential", "crossover")
MODES: tuple[str, ...] = ("unaided", "aided")

#: BI-RADS assessment categories a reader may give a lesion under study. Category 1 (negative) is
#: not offered because every case shows a lesion; category 0 and 6 do not apply to a rating task.
BIRADS_CATEGORIES: tuple[str, ...] = ("2", "3", "4A", "4B", "4C", "5")

#: Lowest BI-RADS category counted as a positive (biopsy) call for sensitivity and specificity.
POSITIVE_BIRADS = "4A"


def birads_rank(category: str) -> int:
    """Return the ordinal rank of a BI-RADS category (2 -> 1, ..., 5 -> 6).

    Raises
    ------
    StudyStoreError
        When ``category`` is not one of :data:`BIRADS_CATEGORIES`.
    """
    normalised = str(category).strip().upper()
    if normalised not in BIRADS_CATEGORIES:
        raise StudyStoreError(
            f"BI-RADS category {category!r} is invalid; use one of {', '.join(BIRADS_CATEGORIES)}"
        )
    return BIRADS_CATEGORIES.index(normalised) + 1


def check_probability(probability: object) -> int:
    """Return the probability of malignancy as an int in [0, 100], or raise StudyStoreError."""
    try:
        value = float(probability)  # type: ignore[arg-type]
    except (TypeError, ValueError) as error:
        raise StudyStoreError(
            f"probability of malignancy {probability!r} is not a number; give a whole percentage 0-100"
        ) from error
    if not value.is_integer() or not 0 <= value <= 100:
        raise StudyStoreError(
            f"probability of malignancy {probability!r} is invalid; give a whole percentage 0-100"
        )
    return int(value)


def check_design(design: str, washout_days: int) -> None:
    """Raise StudyStoreError unless ``design`` is known and ``washout_days`` suits it."""
    if design not in DESIGNS:
        raise StudyStoreError(f"study design {design!r} is unknown; use 'sequential' or 'crossover'")
    if washout_days < 0:
        raise StudyStoreError(f"washout of {washout_days} days is invalid; give 0 or more days")
    if design == "sequential" and washout_days:
        raise StudyStoreError(
            f"a sequential study has one session and no washout, got washout {washout_days} days; "
            "use the crossover design or set the washout to 0"
        )


def reader_seed(study_seed: int, reader_position: int) -> int:
    """Derive the seed of one reader's order from the study seed and the reader's 0-based position."""
    state = np.random.SeedSequence([int(study_seed), int(reader_position)]).generate_state(1)
    # Keep it positive and within a signed 32-bit column.
    return int(state[0] & 0x7FFFFFFF)


@dataclass(frozen=True)
class SessionPlan:
    """One session's reading list: case ids in reading order with each one's condition."""

    number: int
    items: tuple[tuple[str, Condition], ...]


def plan_reader(case_ids: Sequence[str], design: Design, seed: int) -> tuple[SessionPlan, ...]:
    """Draw one reader's sessions and case order.

    Parameters
    ----------
    case_ids : sequence of str
        The study's cases in manifest order.
    design : {"sequential", "crossover"}
    seed : int
        The reader's seed (:func:`reader_seed`).

    Returns
    -------
    tuple of SessionPlan
        One session (sequential) or two (crossover); every case appears once per session.
    """
    rng = np.random.default_rng(seed)
    cases = list(case_ids)
    if design == "sequential":
        order = rng.permutation(len(cases))
        return (SessionPlan(1, tuple((cases[k], "sequential") for k in order)),)

    shuffled = rng.permutation(len(cases))
    half_a = {cases[k] for k in shuffled[: len(cases) // 2]}
    sessions = []
    for number in (1, 2):
        order = rng.permutation(len(cases))
        items = []
        for k in order:
            in_a = cases[k] in half_a
            unaided = in_a if number == 1 else not in_a
            items.append((cases[k], "unaided" if unaided else "aided"))
        sessions.append(SessionPlan(number, tuple(items)))
    return tuple(sessions)


def modes_for(condition: Condition) -> tuple[Mode, ...]:
    """Return the reads an assignment needs, in order ("sequential" needs unaided then aided)."""
    if condition == "sequential":
        return ("unaided", "aided")
    return (condition,)
