"""``python -m pyevonas``: the same command line as the ``pyevonas`` script."""

from pyevonas.cli import main

if __name__ == "__main__":
    main()
