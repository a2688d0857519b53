"""mammosynth: synthetic mammograms that look like your data, are controllable and are checked with numbers.

The package reads in one direction: ``io`` → ``datasets`` → ``preprocess`` → ``phantom`` → (``models`` →
``training`` → ``generate`` → ``evaluate`` → ``export``). ``api`` holds one function per CLI verb and
``cli`` is a thin typer skin over it.
"""

from mammosynth.errors import InputError

__version__ = "0.1.0"
__all__ = ["InputError", "__version__"]
