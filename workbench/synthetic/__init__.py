"""A small synthetic competition shaped exactly like BirdCLEF 2023 (files, names, columns).

Why: every stage of the toolkit (loading, folds, pre-training, fine-tuning, export, inference,
scoring) must run end to end without the 5 GB real data and without internet, and the run must
say something: each species gets a distinct, learnable call (its own frequency band, sweep,
rhythm and timbre), so a small log-mel CNN learns it in a few epochs and scores well above an
untrained one on the padded cmAP of the hidden soundscapes.

`spec` (the spec, species, taxonomy, random streams), `sounds` (calls, backgrounds,
recordings), `soundscapes` (the hidden test and its solution), `recordings` (catalogue,
sources, metadata tables), `competition` (writing it all). Runs on the user's machine only
(tests, benchmarks, the rehearsal); notebooks never import it.
"""

from workbench.synthetic.competition import make_competition
from workbench.synthetic.sounds import CallParams, call_params, render_call, render_recording
from workbench.synthetic.soundscapes import (
    render_soundscape,
    soundscape_labels,
    soundscape_windows,
)
from workbench.synthetic.spec import SyntheticSpec, species_codes

__all__ = [
    "CallParams",
    "SyntheticSpec",
    "call_params",
    "make_competition",
    "render_call",
    "render_recording",
    "render_soundscape",
    "soundscape_labels",
    "soundscape_windows",
    "species_codes",
]
