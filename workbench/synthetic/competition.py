"""Writing a whole synthetic competition (and its pre-training sources) into a folder."""

from __future__ import annotations

import shutil
from pathlib import Path

from workbench.synthetic.recordings import (
    COMPETITION,
    PRETRAIN_SOURCES,
    make_catalog,
    make_placements,
    metadata_table,
    write_recordings,
)
from workbench.synthetic.soundscapes import sample_submission, write_soundscapes
from workbench.synthetic.spec import SyntheticSpec, make_taxonomy

DEFAULT_SPEC = SyntheticSpec()


def claim_root(root: Path, overwrite: bool) -> None:
    """Refuse to mix a new competition into old files; with overwrite, remove only our own."""
    names = [s.folder for s in (COMPETITION, *PRETRAIN_SOURCES)]
    targets = [root / n for n in (*names, "solution.csv", "README_synthetic.txt")]
    busy = [t for t in targets if t.is_file() or (t.is_dir() and any(t.iterdir()))]
    if busy and not overwrite:
        listed = ", ".join(str(t) for t in busy)
        raise FileExistsError(
            f"make_competition: {listed} already exist(s) and is not empty; "
            "pass overwrite=True to replace the synthetic competition there"
        )
    for target in busy:
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink()


def readme_text(spec: SyntheticSpec, stems: list[str]) -> str:
    """What each folder is, for whoever opens the root."""
    lines = [
        "Synthetic BirdCLEF 2023-shaped data made by workbench/synthetic (not real bird sounds).",
        f"Spec: {spec}",
        "",
        "birdclef-2023/        the competition: train_audio/<label>/XC*.ogg, train_metadata.csv,",
        f"                      test_soundscapes/ ({', '.join(s + '.ogg' for s in stems)}),",
        "                      sample_submission.csv, eBird_Taxonomy_v2021.csv",
        "solution.csv          hidden ground truth of the test soundscapes (row_id + 0/1 per "
        "species)",
    ]
    if spec.with_pretrain_sources:
        lines += [
            "birdsong-recognition/ BirdCLEF 2020: train.csv + train_audio/<ebird_code>/XC*.mp3 "
            "(44.1 kHz)",
            "birdclef-2021/        train_metadata.csv + train_short_audio/<label>/XC*.ogg",
            "birdclef-2022/        train_metadata.csv + train_audio/<label>/XC*.ogg",
            "xeno-canto-extended/  train_extended.csv + A-M|N-Z/<ebird_code>/XC*.mp3",
            "Pre-training sources hold the 2023 species plus "
            f"{spec.pretrain_extra_species} more; recordings repeat across sources and with",
            "birdclef-2023 under the same XC id (de-duplicate by XC id). 2020-style tables name",
            "labels 'Genus species_Common Name' in primary_label/secondary_labels; use ebird_code.",
        ]
    return "\n".join(lines) + "\n"


def make_competition(
    root: str | Path, spec: SyntheticSpec = DEFAULT_SPEC, *, overwrite: bool = False
) -> Path:
    """Write the synthetic competition into root/'birdclef-2023' and return that folder.

    Also writes root/'solution.csv' (ground truth of the test soundscapes), the pre-training
    sources (root/'birdsong-recognition', 'birdclef-2021', 'birdclef-2022',
    'xeno-canto-extended') when spec.with_pretrain_sources, and root/'README_synthetic.txt'.
    Raises FileExistsError when any of these already holds files, unless overwrite=True.
    """
    root = Path(root)
    claim_root(root, overwrite)
    comp = root / COMPETITION.folder
    comp.mkdir(parents=True, exist_ok=True)
    catalog = make_catalog(spec)
    placements = make_placements(spec, catalog)
    taxonomy = make_taxonomy(len(spec.all_species) + 4)  # like eBird's: more species than used
    write_recordings(root, spec, catalog, placements)
    pretrain = PRETRAIN_SOURCES if spec.with_pretrain_sources else ()
    sources = (COMPETITION, *pretrain)
    for source in sources:
        rows = catalog[catalog.xc_id.isin(placements.xc_id[placements.source == source.folder])]
        table = metadata_table(source, rows, taxonomy, source.sample_rate or spec.sample_rate)
        table.to_csv(root / source.folder / source.table, index=False)
    stems = write_soundscapes(comp, root / "solution.csv", spec)
    sample_submission(stems[0], spec).to_csv(comp / "sample_submission.csv", index=False)
    taxonomy.to_csv(comp / "eBird_Taxonomy_v2021.csv", index=False)
    (root / "README_synthetic.txt").write_text(readme_text(spec, stems))
    return comp
