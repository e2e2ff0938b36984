"""Model packages for ranking services: ``ltr export`` writes one, :class:`RankingService`
loads it (verifying every file) and ranks products per request.

See :mod:`ltr.serving.export` for the package layout, :mod:`ltr.serving.requests` for the
request format and :mod:`ltr.serving.features` for the defaults of missing inputs.
"""

from __future__ import annotations

from ltr._lazy import lazy_exports

_EXPORTS = {
    "RankingService": "ltr.serving.service",
    "load_package": "ltr.serving.service",
    "export_package": "ltr.serving.export",
    "RequestError": "ltr.serving.requests",
    "RankRequest": "ltr.serving.requests",
    "Ranking": "ltr.serving.requests",
    "RankedProduct": "ltr.serving.requests",
    "verify_package": "ltr.serving.manifest",
    "sign_package": "ltr.serving.manifest",
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
