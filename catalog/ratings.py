"""Bradley–Terry ratings from blind side-by-side votes (pure Python, no Django).

A vote is (a, b, outcome): two players (variant ids) and "a", "b", "tie" or "both_bad".

- A tie counts as half a win each way (Davidson's tie model would add a parameter the few votes
  a team casts can't pin down; half a win each way is what the Elo tradition does).
- "Both bad" says nothing about which of the two is better: it is tallied and shown, never counted
  as a comparison.

The strengths are the maximum-likelihood estimate of the Bradley–Terry model
P(i beats j) = p_i / (p_i + p_j), found by Hunter's MM algorithm (Hunter 2004, "MM algorithms
for generalized Bradley–Terry models", Ann. Statist. 32(1), eq. 3):
p_i <- W_i / sum_j n_ij / (p_i + p_j), with W_i the score of i and n_ij the comparisons of i and j.
The estimate exists (is finite) only when every player has scored against every other through
some chain of comparisons (the directed "scored against" graph is strongly connected, Hunter's
Assumption 1); otherwise some strength runs off to 0 or infinity and we refuse to rate.

The intervals are Wald intervals from the Fisher information of theta = log p:
I = sum over pairs of n_ij π_ij (1 - π_ij) (e_i - e_j)(e_i - e_j)^T. theta is fixed only up to
a constant, so it is centred (mean 0) and the covariance is I's pseudo-inverse,
(I + J/k)^-1 - J/k for a connected comparison graph (J the all-ones matrix). Ratings are shown
on the Elo scale, 1000 + 400 log10(p_i / geometric mean of p).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

OUTCOMES = ("a", "b", "tie", "both_bad")
Z95 = 1.959963984540054  # the standard normal's 97.5th percentile
ELO_SCALE = 400 / math.log(10)  # Elo points per unit of natural-log strength
ELO_BASE = 1000.0
MIN_VOTES = 10  # fewer counted comparisons than this and a variant is not ranked, however narrow


@dataclass
class PairTally:
    """The votes between two players, `a` and `b` in the order the first vote named them."""

    a: Hashable
    b: Hashable
    a_wins: int = 0
    b_wins: int = 0
    ties: int = 0
    both_bad: int = 0

    @property
    def counted(self) -> int:
        """Comparisons that enter the ratings ("both bad" doesn't)."""
        return self.a_wins + self.b_wins + self.ties

    @property
    def a_score(self) -> float:
        return self.a_wins + self.ties / 2

    @property
    def a_win_rate(self) -> float | None:
        """a's share of the counted comparisons, a tie counting half; None with none counted."""
        return self.a_score / self.counted if self.counted else None


@dataclass
class Rating:
    player: Hashable
    votes: int = 0  # counted comparisons it took part in
    wins: int = 0
    losses: int = 0
    ties: int = 0
    both_bad: int = 0
    theta: float | None = None  # log-strength, centred over the rated players
    se: float | None = None  # theta's standard error
    rank: int | None = None  # 1 = best, only where the order around it is resolved
    why_unranked: str = ""

    @property
    def rating(self) -> float | None:
        return None if self.theta is None else ELO_BASE + ELO_SCALE * self.theta

    @property
    def half_width(self) -> float | None:
        """Half the 95 % interval, in Elo points."""
        return None if self.se is None else Z95 * ELO_SCALE * self.se

    @property
    def low(self) -> float | None:
        return None if self.theta is None else self.rating - self.half_width

    @property
    def high(self) -> float | None:
        return None if self.theta is None else self.rating + self.half_width


@dataclass
class Leaderboard:
    ratings: list[Rating] = field(default_factory=list)  # best first; the unrated last
    pairs: list[PairTally] = field(default_factory=list)
    refused: str = ""  # why no ratings could be computed ("" when they were)
    min_votes: int = MIN_VOTES

    @property
    def counted(self) -> int:
        return sum(p.counted for p in self.pairs)

    @property
    def both_bad(self) -> int:
        return sum(p.both_bad for p in self.pairs)


def tally(votes: Iterable[tuple[Hashable, Hashable, str]]) -> list[PairTally]:
    """One PairTally per unordered pair, in the order pairs first appear."""
    pairs: dict[frozenset, PairTally] = {}
    for a, b, outcome in votes:
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}")
        if a == b:
            raise ValueError(f"a player can't be compared with itself ({a!r})")
        pair = pairs.setdefault(frozenset((a, b)), PairTally(a, b))
        if outcome == "tie":
            pair.ties += 1
        elif outcome == "both_bad":
            pair.both_bad += 1
        elif (outcome == "a") == (a == pair.a):
            pair.a_wins += 1
        else:
            pair.b_wins += 1
    return list(pairs.values())


def _scored_against(pairs: list[PairTally]) -> dict[Hashable, set]:
    """i -> the players i has scored against (a win or a tie)."""
    edges: dict[Hashable, set] = {}
    for p in pairs:
        if not p.counted:
            continue
        edges.setdefault(p.a, set())
        edges.setdefault(p.b, set())
        if p.a_wins or p.ties:
            edges[p.a].add(p.b)
        if p.b_wins or p.ties:
            edges[p.b].add(p.a)
    return edges


def _reachable(edges: dict[Hashable, set], start: Hashable, reverse: bool = False) -> set:
    if reverse:
        flipped: dict[Hashable, set] = {n: set() for n in edges}
        for n, targets in edges.items():
            for t in targets:
                flipped[t].add(n)
        edges = flipped
    seen, todo = {start}, [start]
    while todo:
        for nxt in edges[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def estimate_exists(pairs: list[PairTally]) -> bool:
    """Hunter's Assumption 1: every player reaches every other in the scored-against graph."""
    edges = _scored_against(pairs)
    if len(edges) < 2:
        return False
    start = next(iter(edges))
    everyone = set(edges)
    return _reachable(edges, start) == everyone and _reachable(edges, start, reverse=True) == everyone


def bradley_terry(pairs: list[PairTally], *, tolerance: float = 1e-12,
                  max_iterations: int = 100_000) -> dict[Hashable, float]:
    """The centred maximum-likelihood log-strengths (theta, mean 0) by the MM iteration; the
    caller checks estimate_exists first (without it the iteration drifts without end)."""
    players = list(_scored_against(pairs))
    score = {i: 0.0 for i in players}
    for p in pairs:
        score[p.a] += p.a_score
        score[p.b] += p.counted - p.a_score
    strength = {i: 1.0 for i in players}
    for _ in range(max_iterations):
        denominators = {i: 0.0 for i in players}
        for p in pairs:
            if p.counted:
                share = p.counted / (strength[p.a] + strength[p.b])
                denominators[p.a] += share
                denominators[p.b] += share
        updated = {i: score[i] / denominators[i] for i in players}
        centre = math.fsum(math.log(v) for v in updated.values()) / len(players)
        updated = {i: v / math.exp(centre) for i, v in updated.items()}
        change = max(abs(math.log(updated[i] / strength[i])) for i in players)
        strength = updated
        if change < tolerance:
            break
    return {i: math.log(v) for i, v in strength.items()}


def _inverse(matrix: list[list[float]]) -> list[list[float]]:
    """Gauss–Jordan with partial pivoting; the matrices here are a handful of rows."""
    n = len(matrix)
    rows = [row[:] + [1.0 if i == j else 0.0 for j in range(n)] for i, row in enumerate(matrix)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(rows[r][col]))
        rows[col], rows[pivot] = rows[pivot], rows[col]
        lead = rows[col][col]
        rows[col] = [v / lead for v in rows[col]]
        for r in range(n):
            if r != col and rows[r][col]:
                factor = rows[r][col]
                rows[r] = [v - factor * w for v, w in zip(rows[r], rows[col])]
    return [row[n:] for row in rows]


def covariance(pairs: list[PairTally], theta: dict[Hashable, float]) -> dict[tuple, float]:
    """The covariance of the centred theta: the pseudo-inverse of the Fisher information."""
    players = list(theta)
    index = {p: i for i, p in enumerate(players)}
    k = len(players)
    info = [[0.0] * k for _ in range(k)]
    for p in pairs:
        if not p.counted:
            continue
        pi = 1 / (1 + math.exp(theta[p.b] - theta[p.a]))
        weight = p.counted * pi * (1 - pi)
        i, j = index[p.a], index[p.b]
        info[i][i] += weight
        info[j][j] += weight
        info[i][j] -= weight
        info[j][i] -= weight
    inverse = _inverse([[v + 1 / k for v in row] for row in info])
    return {(a, b): inverse[index[a]][index[b]] - 1 / k for a in players for b in players}


def leaderboard(votes: Iterable[tuple[Hashable, Hashable, str]], *,
                min_votes: int = MIN_VOTES) -> Leaderboard:
    """Ratings with 95 % intervals, best first, and the tallies per pair. A rated player gets a
    rank only with at least `min_votes` counted comparisons and an interval clear of its
    neighbours' in the order (overlapping intervals leave the order between them unresolved)."""
    pairs = tally(votes)
    board = Leaderboard(pairs=pairs, min_votes=min_votes)
    by_player: dict[Hashable, Rating] = {}
    for p in pairs:
        for me, won, lost in ((p.a, p.a_wins, p.b_wins), (p.b, p.b_wins, p.a_wins)):
            r = by_player.setdefault(me, Rating(me))
            r.votes += p.counted
            r.wins += won
            r.losses += lost
            r.ties += p.ties
            r.both_bad += p.both_bad
    board.ratings = list(by_player.values())
    if not estimate_exists(pairs):
        board.refused = ("not enough votes: until every variant has won or tied against every other "
                         "through some chain of votes, the maximum-likelihood strengths are unbounded")
        for r in board.ratings:
            r.why_unranked = "not enough votes"
        return board
    theta = bradley_terry(pairs)
    cov = covariance(pairs, theta)
    for r in board.ratings:
        if r.player in theta:
            r.theta, r.se = theta[r.player], math.sqrt(max(cov[(r.player, r.player)], 0.0))
        else:
            r.why_unranked = "no counted votes (only “both bad”)"
    rated = sorted((r for r in board.ratings if r.theta is not None), key=lambda r: -r.theta)
    for position, r in enumerate(rated):
        neighbours = rated[max(0, position - 1):position] + rated[position + 1:position + 2]
        if r.votes < min_votes:
            r.why_unranked = f"not enough votes (fewer than {min_votes})"
        elif any(n.low <= r.high and r.low <= n.high for n in neighbours):
            r.why_unranked = "not enough votes (its interval overlaps a neighbour's)"
        else:
            r.rank = position + 1
    board.ratings = rated + [r for r in board.ratings if r.theta is None]
    return board
