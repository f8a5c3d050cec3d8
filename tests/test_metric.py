import numpy as np
import pandas as pd
import pytest

from lib.metric import padded_cmap


def frames(truth, preds, species=("a", "b")):
    ids = [f"s_{5 * (i + 1)}" for i in range(len(truth))]
    sol = pd.DataFrame(truth, columns=list(species)).assign(row_id=ids)
    sub = pd.DataFrame(preds, columns=list(species)).assign(row_id=ids)
    return sol[["row_id", *species]], sub[["row_id", *species]]


def test_hand_computed_value():
    # Species a: truth [1,0,0], preds [0.9,0.8,0.1]; with 5 padding rows of 1/1 the positive
    # set is {row0, pads}; ranking by score: pads(1.0) x5, row0 0.9, row1 0.8, row2 0.1.
    # Precision at each positive: pads 1.0 each, row0 6/6 -> AP = 1.0.
    # Species b: truth [0,1,0], preds [0.9,0.8,0.1]: pads 5/5, row0 (neg), row1 at rank 7 -> 6/7.
    # AP_b = (5 * 1 + 6/7) / 6.
    sol, sub = frames([[1, 0], [0, 1], [0, 0]], [[0.9, 0.9], [0.8, 0.8], [0.1, 0.1]])
    expected = (1.0 + (5 + 6 / 7) / 6) / 2
    assert padded_cmap(sol, sub) == pytest.approx(expected)


def test_species_without_positives_scores_one():
    sol, sub = frames([[0, 1], [0, 0]], [[0.3, 0.9], [0.7, 0.1]])
    assert padded_cmap(sol, sub) == pytest.approx(1.0)


def test_padding_factor_changes_the_score():
    sol, sub = frames([[1, 0], [0, 1]], [[0.1, 0.9], [0.9, 0.1]])
    assert padded_cmap(sol, sub, padding_factor=1) < padded_cmap(sol, sub, padding_factor=5) < 1


def test_matches_kaggle_reference_on_random_data():
    """Kaggle's own code: concat ones rows and call sklearn directly (no alignment)."""
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(0)
    truth = (rng.random((40, 6)) < 0.2).astype(int)
    preds = rng.random((40, 6))
    sol, sub = frames(truth, preds, species=list("abcdef"))
    pad = np.ones((5, 6))
    ref = average_precision_score(np.vstack([truth, pad]), np.vstack([preds, pad]), average="macro")
    assert padded_cmap(sol, sub) == pytest.approx(ref)


def test_rows_and_columns_are_aligned_by_name():
    sol, sub = frames([[1, 0], [0, 1], [0, 0]], [[0.9, 0.2], [0.1, 0.8], [0.3, 0.3]])
    shuffled = sub.iloc[[2, 0, 1]][["b", "row_id", "a"]]
    assert padded_cmap(sol, shuffled) == pytest.approx(padded_cmap(sol, sub))


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda s: s.iloc[:-1], "1 missing"),
        (lambda s: pd.concat([s, s.iloc[[0]].assign(row_id="x_5")]), "1 extra"),
        (lambda s: s.drop(columns="b"), "missing \\['b'\\]"),
        (lambda s: s.assign(c=0.5), "extra \\['c'\\]"),
        (lambda s: s.drop(columns="row_id"), "row_id"),
        (lambda s: s.assign(a=np.nan), "NaN"),
        (lambda s: pd.concat([s, s.iloc[[0]]]), "duplicated"),
    ],
)
def test_clear_errors(mutate, message):
    sol, sub = frames([[1, 0], [0, 1]], [[0.9, 0.2], [0.1, 0.8]])
    with pytest.raises(ValueError, match=message):
        padded_cmap(sol, mutate(sub))


# ---- macro ROC-AUC (BirdCLEF 2024-2026) and the dispatch by name ----

from lib.metric import roc_auc, score  # noqa: E402


def mann_whitney_auc(truth: np.ndarray, preds: np.ndarray) -> float:
    """Independent ROC-AUC of one class: the rank-sum (Mann-Whitney U) with mid-ranks for ties."""
    order = np.argsort(preds, kind="stable")
    ranks = np.empty(len(preds))
    sorted_preds = preds[order]
    start = 0
    while start < len(preds):  # average rank over each run of tied scores
        stop = start
        while stop + 1 < len(preds) and sorted_preds[stop + 1] == sorted_preds[start]:
            stop += 1
        ranks[order[start : stop + 1]] = (start + stop) / 2 + 1
        start = stop + 1
    n_pos = int(truth.sum())
    n_neg = len(truth) - n_pos
    u = ranks[truth == 1].sum() - n_pos * (n_pos + 1) / 2
    return u / (n_pos * n_neg)


def reference_macro_auc(truth: np.ndarray, preds: np.ndarray) -> float:
    scored = [k for k in range(truth.shape[1]) if truth[:, k].sum() > 0]
    return float(np.mean([mann_whitney_auc(truth[:, k], preds[:, k]) for k in scored]))


def test_roc_auc_hand_computed():
    # a: positives {r0}, negatives {r1, r2}: 0.9 beats 0.5 and 0.1 -> 1.0.
    # b: positive {r1} at 0.5, negatives 0.5 (tie, 1/2) and 0.7 (loses) -> 0.25.
    # c: no positive -> skipped, so the mean is (1.0 + 0.25) / 2, not a third of something.
    sol, sub = frames(
        [[1, 0, 0], [0, 1, 0], [0, 0, 0]],
        [[0.9, 0.5, 0.3], [0.5, 0.5, 0.2], [0.1, 0.7, 0.9]],
        species="abc",
    )
    assert roc_auc(sol, sub) == pytest.approx(0.625)


@pytest.mark.parametrize("seed", range(6))
def test_roc_auc_equals_rank_sum_reimplementation(seed):
    rng = np.random.default_rng(seed)
    rows, n_cls = int(rng.integers(20, 60)), int(rng.integers(3, 9))
    truth = (rng.random((rows, n_cls)) < rng.uniform(0.05, 0.4)).astype(int)
    truth[:, 0] = 0  # always at least one class without positives
    truth[0, 1], truth[1, 1] = 1, 0  # and one with both
    preds = np.round(rng.random((rows, n_cls)), 1)  # one decimal: many ties
    species = [f"c{k}" for k in range(n_cls - 1)] + ["41778"]
    sol, sub = frames(truth, preds, species=species)
    shuffled = sub.iloc[rng.permutation(rows)][[*rng.permutation(species), "row_id"]]
    expected = reference_macro_auc(truth, preds)
    assert roc_auc(sol, shuffled) == pytest.approx(expected, abs=1e-12)
    assert score("roc_auc", sol, shuffled) == pytest.approx(expected, abs=1e-12)


def test_roc_auc_ignores_scores_of_classes_without_positives():
    sol, sub = frames([[1, 0], [0, 0], [0, 0]], [[0.9, 0.1], [0.2, 0.8], [0.1, 0.9]])
    flipped = sub.assign(b=1.0 - sub["b"])
    assert roc_auc(sol, sub) == roc_auc(sol, flipped) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda s: s.iloc[:-1], "1 missing"),
        (lambda s: s.drop(columns="b"), "missing \\['b'\\]"),
        (lambda s: s.assign(c=0.5), "extra \\['c'\\]"),
        (lambda s: s.assign(a=np.inf), "NaN or infinite"),
        (lambda s: pd.concat([s, s.iloc[[0]]]), "duplicated"),
        (lambda s: s.assign(b=["0.1", "high", "0.3"]), "\\['b'\\] are not numeric"),
    ],
)
def test_roc_auc_clear_errors(mutate, message):
    sol, sub = frames([[1, 0], [0, 1], [0, 0]], [[0.9, 0.2], [0.1, 0.8], [0.3, 0.3]])
    with pytest.raises(ValueError, match=message):
        roc_auc(sol, mutate(sub))


def test_roc_auc_undefined_cases_are_errors():
    sol, sub = frames([[0, 0], [0, 0]], [[0.9, 0.2], [0.1, 0.8]])
    with pytest.raises(ValueError, match="no class has a positive"):
        roc_auc(sol, sub)
    sol, sub = frames([[1, 1], [1, 0]], [[0.9, 0.2], [0.1, 0.8]])
    with pytest.raises(ValueError, match="\\['a'\\] are positive in every"):
        roc_auc(sol, sub)


def test_padded_cmap_names_a_non_numeric_column():
    sol, sub = frames([[1, 0], [0, 1]], [[0.9, 0.2], [0.1, 0.8]])
    with pytest.raises(ValueError, match="\\['a'\\] are not numeric"):
        padded_cmap(sol, sub.assign(a=["x", "y"]))


def test_score_dispatches_by_metric_name():
    sol, sub = frames([[1, 0], [0, 0], [0, 1]], [[0.9, 0.4], [0.3, 0.2], [0.1, 0.3]])
    assert score("padded_cmap", sol, sub) == padded_cmap(sol, sub)
    assert score("roc_auc", sol, sub) == roc_auc(sol, sub)
    assert score("roc_auc", sol, sub) != score("padded_cmap", sol, sub)
    with pytest.raises(KeyError, match="known metrics: \\['padded_cmap', 'roc_auc'\\]"):
        score("cmap", sol, sub)
