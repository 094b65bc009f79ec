"""``python -m jts`` — the same CLI as the ``jts`` console script."""

from jts.cli import main

main()
