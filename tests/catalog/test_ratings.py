"""Bradley–Terry ratings (catalog/ratings.py) against numbers worked out by hand.

Two facts the hand computations use:
- With two players, the maximum-likelihood P(A beats B) is A's share of the score, so
  theta_A - theta_B = ln(w / l); the variance of that log-odds estimate is 1/(n p (1-p)) = 1/w + 1/l.
  Centred (theta_A = -theta_B) each theta is half the difference, with half its standard error.
- The Fisher information of theta is the Laplacian of the comparison graph with conductance
  c_ij = n_ij π_ij (1 - π_ij) on each pair, so var(theta_i - theta_j) is the effective resistance
  between i and j, and the centred variance is L+_ii = (1/k) Σ_j R_ij - (1/k²) Σ_{j<l} R_jl.
"""


import pytest

from catalog.ratings import leaderboard, tally

APPROX = dict(rel=0, abs=1e-6)


def by_player(board):
    return {r.player: r for r in board.ratings}


def test_two_variants_8_to_4_match_the_closed_form():
    board = leaderboard([("q4", "q8", "b")] * 8 + [("q4", "q8", "a")] * 4)
    q8, q4 = board.ratings
    # theta_q8 = ln(8/4) / 2; on the Elo scale 1000 + 200 log10 2 = 1060.205999...
    assert (q8.player, q8.rating, q4.rating) == ("q8", pytest.approx(1060.2059991, **APPROX),
                                                 pytest.approx(939.7940009, **APPROX))
    # se = sqrt(1/8 + 1/4) / 2 = sqrt(3/32) = 0.3061862...; 95 %: 1.959964 × 173.717793 × se
    assert q8.se == pytest.approx(0.3061862178, **APPROX)
    assert q8.half_width == pytest.approx(104.2504725, abs=1e-5)
    assert (q8.low, q8.high) == (pytest.approx(955.9555266, abs=1e-5), pytest.approx(1164.4564716, abs=1e-5))
    # 1.9600 × 0.6124 = 1.2003 > ln 2: the intervals overlap, so neither is ranked
    assert q8.rank is None and q4.rank is None
    assert "overlaps" in q8.why_unranked
    assert (q8.votes, q8.wins, q8.losses, q4.wins) == (12, 8, 4, 4)


def test_a_tie_is_half_a_win_each_way():
    board = by_player(leaderboard([("a", "b", "a")] * 3 + [("a", "b", "b")] + [("a", "b", "tie")] * 4))
    # scores 3 + 4/2 = 5 against 1 + 4/2 = 3: theta_a - theta_b = ln(5/3) = 0.5108256...
    assert board["a"].theta - board["b"].theta == pytest.approx(0.5108256238, **APPROX)
    # se of the difference sqrt(1/5 + 1/3) = 0.7302967...; each centred theta has half of it
    assert board["a"].se == pytest.approx(0.3651483717, **APPROX)
    assert (board["a"].ties, board["a"].votes) == (4, 8)


def test_three_variants_with_ties_and_both_bad_match_a_hand_computation():
    votes = ([("A", "B", "a")] + [("A", "B", "tie")] * 2          # A scores 2 of 3 against B
             + [("B", "C", "a")] * 2 + [("B", "C", "b")]          # B scores 2 of 3 against C
             + [("C", "A", "b")] * 4 + [("C", "A", "a")]          # A scores 4 of 5 against C
             + [("A", "C", "both_bad")] * 2)                      # not counted
    board = leaderboard(votes)
    # Strengths 4 : 2 : 1 predict exactly these scores (2/3, 2/3 and 4/5 of the games), so they
    # solve the likelihood equations: centred thetas ln 2, 0, -ln 2; Elo 1000 ± 120.411998.
    assert [r.player for r in board.ratings] == ["A", "B", "C"]
    ratings = by_player(board)
    assert ratings["A"].rating == pytest.approx(1120.4119983, **APPROX)
    assert ratings["B"].rating == pytest.approx(1000.0, **APPROX)
    assert ratings["C"].rating == pytest.approx(879.5880017, **APPROX)
    # c_AB = 3·(2/3)(1/3) = 2/3, c_BC = 2/3, c_AC = 5·(4/5)(1/5) = 4/5; R_AB = R_BC = 33/34,
    # R_AC = 15/17, so var theta_A = var theta_C = 31/102 and var theta_B = 1/3.
    assert ratings["A"].se ** 2 == pytest.approx(31 / 102, **APPROX)
    assert ratings["B"].se ** 2 == pytest.approx(1 / 3, **APPROX)
    assert ratings["C"].se ** 2 == pytest.approx(31 / 102, **APPROX)
    assert ratings["A"].half_width == pytest.approx(187.7038388, abs=1e-5)
    # both bad: tallied, not counted
    assert [(r.votes, r.both_bad) for r in board.ratings] == [(8, 2), (6, 0), (8, 2)]
    assert (board.counted, board.both_bad) == (11, 2)
    assert all(r.rank is None and "fewer than 10" in r.why_unranked for r in board.ratings)


def test_a_cycle_of_equal_results_rates_everyone_alike():
    votes = ([("A", "B", "a")] * 4 + [("A", "B", "b")] * 2 + [("B", "C", "a")] * 4
             + [("B", "C", "b")] * 2 + [("C", "A", "a")] * 4 + [("C", "A", "b")] * 2)
    assert [round(r.rating, 6) for r in leaderboard(votes).ratings] == [1000.0] * 3


def test_a_clear_winner_with_enough_votes_is_ranked():
    board = leaderboard([("x", "y", "a")] * 30 + [("x", "y", "b")] * 5)
    # ln 6 = 1.792 against 1.96 × sqrt(1/30 + 1/5) = 0.947: the intervals are apart
    assert [(r.player, r.rank) for r in board.ratings] == [("x", 1), ("y", 2)]
    assert board.ratings[0].high > board.ratings[0].low > board.ratings[1].high


def test_unbeaten_variants_are_refused_not_rated():
    board = leaderboard([("x", "y", "a")] * 3 + [("y", "z", "tie")])
    assert board.refused.startswith("not enough votes")
    assert all(r.rating is None and r.rank is None for r in board.ratings)
    assert leaderboard([]).refused and leaderboard([("x", "y", "both_bad")]).refused


def test_a_pairs_tally_and_win_rate():
    (pair,) = tally([("a", "b", "a"), ("b", "a", "a"), ("b", "a", "tie"), ("a", "b", "both_bad")])
    assert (pair.a, pair.a_wins, pair.b_wins, pair.ties, pair.both_bad) == ("a", 1, 1, 1, 1)
    assert (pair.counted, pair.a_win_rate) == (3, 0.5)
    with pytest.raises(ValueError, match="outcome must be one of"):
        tally([("a", "b", "win")])
