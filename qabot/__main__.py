"""``python -m qabot`` is the ``qabot`` command."""

from qabot.frontends.cli import main

if __name__ == "__main__":
    main()
