"""`python -m stockfeed serve …`: the same as the `stockfeed` command."""

from stockfeed.cli import main

if __name__ == "__main__":
    main()
