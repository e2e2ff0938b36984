"""Data contract: loaders, validation and the grouped-padded-masked layout."""

from ltr.data.groups import PaddedGroups, pad_groups
from ltr.data.loaders import (
    SearchLog,
    load_customers,
    load_impressions,
    load_judgements,
    load_log,
    load_products,
)

__all__ = [
    "PaddedGroups",
    "SearchLog",
    "load_customers",
    "load_impressions",
    "load_judgements",
    "load_log",
    "load_products",
    "pad_groups",
]
