"""Optional parts of mammosynth (``pip install 'mammosynth[app]'`` …): a verb that needs one that is not
installed says so in one line instead of failing on an import deep inside.

Example:
    >>> require("app", ("json",), "serve")  # installed: nothing happens
"""

from __future__ import annotations

import importlib

from mammosynth.errors import InputError

#: What each extra brings (pyproject's optional dependencies), by import name.
EXTRAS = {"app": ("fastapi", "uvicorn"), "scale": ("tensorboard",), "radiomics": ("radiomics", "frd_score")}


def require(extra: str, modules: tuple[str, ...], verb: str) -> None:
    """Import ``modules`` or raise one :class:`InputError` naming the extra that brings them."""
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            raise InputError(
                None,
                f"`mammosynth {verb}` needs the {extra} extra ({name} is missing): pip install 'mammosynth[{extra}]'",
            ) from None
