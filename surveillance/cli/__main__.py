"""``python -m surveillance.cli``: the same as the ``surveillance`` console script."""

from surveillance.cli import main

main()
