"""Authentication: bearer tokens to :class:`Principal` objects.

- :class:`FirebaseTokenVerifier` — Firebase ID tokens (production, Auth emulator);
- :class:`DevTokenVerifier` — signed development tokens (``boiler token``);
- :func:`verifier_from_config` — the one the configuration calls for.
"""

from __future__ import annotations

from .base import Principal as Principal
from .base import TokenVerifier as TokenVerifier
from .config import verifier_from_config as verifier_from_config
from .dev import DevTokenVerifier as DevTokenVerifier
from .firebase import FirebaseTokenVerifier as FirebaseTokenVerifier

__all__ = [
    "DevTokenVerifier",
    "FirebaseTokenVerifier",
    "Principal",
    "TokenVerifier",
    "verifier_from_config",
]
