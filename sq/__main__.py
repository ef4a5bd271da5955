"""`python -m sq` — same entry point as the `sq` console script."""

from sq.cli import main

if __name__ == "__main__":
    main()
