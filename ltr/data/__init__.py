"""Data contract: loaders, validation and the grouped-padded-masked layout."""

from ltr.data.groups import PaddedGroups, pad_groups

__all__ = ["PaddedGroups", "pad_groups"]
