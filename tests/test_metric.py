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
