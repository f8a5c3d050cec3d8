"""What a synthetic competition is made of: its spec, species codes and taxonomy, and the
seeded random streams every part draws from.

Everything is drawn from `SyntheticSpec.seed`; each recording and soundscape draws from its own
stream (keyed by its XC id or index), so the same spec gives byte-identical files.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

WINDOW_SECONDS = 5.0  # the competition's rows: 5-second windows of each soundscape
WINDOW_SECONDS = 5.0
TAXONOMY_COLUMNS = [
    "TAXON_ORDER", "CATEGORY", "SPECIES_CODE", "PRIMARY_COM_NAME", "SCI_NAME", "ORDER1",
    "FAMILY", "SPECIES_GROUP", "REPORT_AS",
]  # fmt: skip
# (code part, English word, Latin epithet) and (code part, English word, genus, family,
# species group, order): species codes, names and taxonomy are built from these.
ADJECTIVES = (
    ("abe", "Abyssinian", "abyssinicus"), ("afr", "African", "africanus"),
    ("bla", "Black", "niger"), ("blu", "Blue", "caeruleus"), ("bro", "Brown", "brunneus"),
    ("cap", "Cape", "capensis"), ("com", "Common", "communis"), ("eas", "Eastern", "orientalis"),
    ("gol", "Golden", "aureus"), ("gry", "Gray", "griseus"), ("gre", "Greater", "major"),
    ("lit", "Little", "minutus"), ("mou", "Mountain", "montanus"), ("nor", "Northern", "borealis"),
    ("reh", "Red-headed", "erythrocephalus"), ("ruf", "Rufous", "rufescens"),
    ("spo", "Spotted", "maculatus"), ("str", "Striped", "striatus"),
    ("whb", "White-browed", "superciliaris"), ("yel", "Yellow", "flavus"),
    ("slb", "Slender-billed", "tenuirostris"),
)  # fmt: skip
PASSERINES = "Passeriformes"
NOUNS = (
    ("thr", "Thrush", "Turdus", "Turdidae (Thrushes and Allies)", "Thrushes", PASSERINES),
    ("fin", "Finch", "Serinus", "Fringillidae (Finches, Euphonias, and Allies)", "Finches",
     PASSERINES),
    ("spa", "Sparrow", "Passer", "Passeridae (Old World Sparrows)", "Sparrows", PASSERINES),
    ("dov", "Dove", "Streptopelia", "Columbidae (Pigeons and Doves)", "Pigeons and Doves",
     "Columbiformes"),
    ("owl", "Owlet", "Glaucidium", "Strigidae (Owls)", "Owls", "Strigiformes"),
    ("kin", "Kingfisher", "Halcyon", "Alcedinidae (Kingfishers)", "Kingfishers",
     "Coraciiformes"),
    ("bul", "Bulbul", "Pycnonotus", "Pycnonotidae (Bulbuls)", "Bulbuls", PASSERINES),
    ("sun", "Sunbird", "Cinnyris", "Nectariniidae (Sunbirds and Spiderhunters)", "Sunbirds",
     PASSERINES),
    ("wea", "Weaver", "Ploceus", "Ploceidae (Weavers and Allies)", "Weavers", PASSERINES),
    ("rob", "Robin-Chat", "Cossypha", "Muscicapidae (Old World Flycatchers)", "Chats",
     PASSERINES),
    ("shr", "Shrike", "Lanius", "Laniidae (Shrikes)", "Shrikes", PASSERINES),
    ("cis", "Cisticola", "Cisticola", "Cisticolidae (Cisticolas and Allies)", "Cisticolas",
     PASSERINES),
    ("hor", "Hornbill", "Tockus", "Bucerotidae (Hornbills)", "Hornbills", "Bucerotiformes"),
    ("bar", "Barbet", "Lybius", "Lybiidae (African Barbets)", "Barbets", "Piciformes"),
    ("sta", "Starling", "Lamprotornis", "Sturnidae (Starlings)", "Starlings", PASSERINES),
    ("fly", "Flycatcher", "Muscicapa", "Muscicapidae (Old World Flycatchers)", "Flycatchers",
     PASSERINES),
    ("lar", "Lark", "Mirafra", "Alaudidae (Larks)", "Larks", PASSERINES),
    ("pip", "Pipit", "Anthus", "Motacillidae (Wagtails and Pipits)", "Pipits", PASSERINES),
    ("cuc", "Cuckoo", "Chrysococcyx", "Cuculidae (Cuckoos)", "Cuckoos", "Cuculiformes"),
    ("tit", "Tit", "Melaniparus", "Paridae (Tits, Chickadees, and Titmice)", "Tits",
     PASSERINES),
)  # fmt: skip


@dataclass(frozen=True)
class SyntheticSpec:
    n_species: int = 6
    recordings_per_species: tuple[int, int] = (6, 10)  # inclusive range; draw per species
    recording_seconds: tuple[float, float] = (8.0, 20.0)
    n_soundscapes: int = 2
    soundscape_seconds: float = 60.0
    sample_rate: int = 32000
    seed: int = 0
    minor_species: int = 1  # this many species get only 1-3 recordings (like rare classes)
    with_pretrain_sources: bool = True
    pretrain_extra_species: int = 2  # species only in the pre-training sources

    def __post_init__(self) -> None:
        """Reject specs that would give a broken or degenerate competition, naming the field."""
        lo, hi = self.recordings_per_species
        checks = {
            "n_species must be >= 1": self.n_species >= 1,
            "recordings_per_species must be 1 <= lo <= hi": 1 <= lo <= hi,
            "recording_seconds must be 1 <= lo <= hi": min(self.recording_seconds) >= 1.0
            and self.recording_seconds[0] <= self.recording_seconds[1],
            "n_soundscapes must be >= 1": self.n_soundscapes >= 1,
            "soundscape_seconds must be >= 5": self.soundscape_seconds >= WINDOW_SECONDS,
            "sample_rate must be >= 32000 (calls reach 14 kHz)": self.sample_rate >= 32000,
            "seed must be >= 0": self.seed >= 0,
            "minor_species must be in [0, n_species]": 0 <= self.minor_species <= self.n_species,
            "pretrain_extra_species must be >= 0": self.pretrain_extra_species >= 0,
        }
        failed = [message for message, ok in checks.items() if not ok]
        if failed:
            raise ValueError(f"invalid SyntheticSpec: {'; '.join(failed)} (got {self})")

    @property
    def all_species(self) -> list[str]:
        """2023 species plus the pre-training-only ones (sorted)."""
        extra = self.pretrain_extra_species if self.with_pretrain_sources else 0
        return species_codes(self.n_species + extra)


def code_sequence(n: int) -> list[tuple[int, int, str]]:
    """First n (adjective, noun, code) in a fixed order, so species_codes(n) is prefix-stable."""
    pairs = len(ADJECTIVES) * len(NOUNS)
    if not 0 <= n <= pairs:
        raise ValueError(f"species_codes: n must be in [0, {pairs}], got {n}")
    order = np.random.default_rng(2023).permutation(pairs)[:n]
    out = []
    for k in order.tolist():
        a, b = divmod(k, len(NOUNS))
        suffix = "" if (a + b) % 4 == 0 else "1"  # real codes mix 'amecro' and 'abethr1'
        out.append((a, b, ADJECTIVES[a][0] + NOUNS[b][0] + suffix))
    return out


def species_codes(n: int) -> list[str]:
    """n deterministic eBird-like codes ('abethr1', 'comfin'), sorted.

    The first n of one fixed sequence: species_codes(n) is a subset of species_codes(n + k), so
    the pre-training-only species never collide with the competition's.
    """
    return sorted(code for _, _, code in code_sequence(n))


def make_taxonomy(n: int) -> pd.DataFrame:
    """Taxonomy rows (eBird_Taxonomy_v2021 columns) of species_codes(n), by code."""
    rows = []
    for a, b, code in code_sequence(n):
        _, adjective, epithet = ADJECTIVES[a]
        _, noun, genus, family, group, order = NOUNS[b]
        rows.append([0, "species", code, f"{adjective} {noun}", f"{genus} {epithet}", order,
                     family, group, ""])  # fmt: skip
    table = pd.DataFrame(rows, columns=TAXONOMY_COLUMNS).sort_values("SPECIES_CODE")
    table["TAXON_ORDER"] = 1000 + 7 * np.arange(len(table))
    return table.reset_index(drop=True)


def stream(seed: int, *keys: str | int) -> np.random.Generator:
    """An independent random stream per (seed, purpose, item): order of generation is free."""
    ints = [k if isinstance(k, int) else zlib.crc32(k.encode()) for k in keys]
    return np.random.default_rng([seed, *ints])
