"""Label vocabulary shared by datasets, the labels store and the classifier."""

NORMAL = "normal"  # the label of a defect-free image; never a defect type
DEFAULT_TYPES = ("Spot", "Scratch")

# Distinct, colour-blind-friendly colours (Okabe-Ito) handed out to new defect types in order.
PALETTE = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#999999")


def colour_for(index: int) -> str:
    return PALETTE[index % len(PALETTE)]
