"""``python -m qabot`` is the ``qabot`` command."""

from .cli import main

if __name__ == "__main__":
    main()
