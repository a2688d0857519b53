"""The local web app (issue 7, in progress): so far the reader-study store; the server, designer and
generation pages are still to come."""

from __future__ import annotations

from mammosynth.app.study import StudyStore, blinded_png

__all__ = ["StudyStore", "blinded_png"]
