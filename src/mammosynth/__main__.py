"""``python -m mammosynth`` (and ``torchrun -m mammosynth train …``): the command line."""

from mammosynth.cli import main

if __name__ == "__main__":
    main()
