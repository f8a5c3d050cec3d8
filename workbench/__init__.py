"""The user's-machine side of birdclef-kit: everything that never runs inside a Kaggle notebook.

The builder (`inline`, `metadata`, `owner`, `wheels`, `build`), notebook execution (`execute`),
the local rehearsal of the Kaggle loop (`rehearsal`, `submission`) and the synthetic competition
(`synthetic`) live here; later the Kaggle round trip joins them. `lib/` holds what a notebook
runs (the builder inlines it); kernels never import `workbench`, and the builder refuses a
kernel that tries (a notebook on Kaggle cannot import this repository).
"""
