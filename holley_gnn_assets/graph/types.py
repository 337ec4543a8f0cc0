"""Node types, edge types and user tiers of the recommendation graph (one definition each).

``TIER_INDEX`` is the integer each tier gets in ``data["user"].tier`` and in the model's tier
embeddings; ``COLD`` is the cold tier's index (users served through their vehicle alone).
"""

from __future__ import annotations

NODE_TYPES = ("user", "product", "vehicle")
TIERS = ("cold", "warm", "hot")
TIER_INDEX = {t: i for i, t in enumerate(TIERS)}
COLD = TIER_INDEX["cold"]

INTERACTS = ("user", "interacts", "product")
REV_INTERACTS = ("product", "rev_interacts", "user")
OWNS = ("user", "owns", "vehicle")
REV_OWNS = ("vehicle", "rev_owns", "user")
FITS = ("product", "fits", "vehicle")
REV_FITS = ("vehicle", "rev_fits", "product")
CO_PURCHASED = ("product", "co_purchased", "product")
EDGE_TYPES = (INTERACTS, REV_INTERACTS, OWNS, REV_OWNS, FITS, REV_FITS, CO_PURCHASED)
REVERSE = {
    INTERACTS: REV_INTERACTS,
    REV_INTERACTS: INTERACTS,
    OWNS: REV_OWNS,
    REV_OWNS: OWNS,
    FITS: REV_FITS,
    REV_FITS: FITS,
}
# edge types whose weights enter the attention as a 1-dim edge_attr
WEIGHTED_EDGE_TYPES = (INTERACTS, REV_INTERACTS, CO_PURCHASED)
