"""Label vocabulary shared by datasets, the labels store and the classifier."""

NORMAL = "normal"  # the label of a defect-free image; never a defect type
DEFAULT_TYPES = ("Spot", "Scratch")

# Words that mean "defect-free", any case, wherever a label is read: a labels CSV, a dataset's
# folder, a label given to the store, a merge target, a prototype database. They are the normal
# folder names of the folders layout and MVTec, magnetic-tile's "Free", and NORMAL itself.
NORMAL_WORDS = frozenset({NORMAL, "good", "ok", "free"})


def is_normal_word(label: object) -> bool:
    """Whether a label means defect-free (one of NORMAL_WORDS, any case and spacing)."""
    return isinstance(label, str) and label.strip().casefold() in NORMAL_WORDS


# Distinct, colour-blind-friendly colours (Okabe-Ito) handed out to new defect types in order.
PALETTE = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#999999")


def colour_for(index: int) -> str:
    return PALETTE[index % len(PALETTE)]
