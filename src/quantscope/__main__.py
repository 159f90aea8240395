"""`python -m quantscope …`: the CLI where the package is on the path but not installed (a lent GPU)."""

from quantscope.cli import main

if __name__ == "__main__":
    main()
