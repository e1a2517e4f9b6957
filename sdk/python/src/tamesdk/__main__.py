"""``python -m tamesdk``: the same command as ``tamesdk``."""

from .cli import main

main()
