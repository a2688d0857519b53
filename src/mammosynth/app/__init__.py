"""The local web app (``mammosynth serve``): the parametric breast designer, generation in the browser and
blinded reader studies — a skin over the Python API, like the CLI."""

from __future__ import annotations

from mammosynth.app.study import StudyStore, blinded_png

__all__ = ["StudyStore", "blinded_png"]
