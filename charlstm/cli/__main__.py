"""`python -m charlstm.cli` runs the command line, as the `charlstm` console script does."""

from . import main

if __name__ == "__main__":
    main(prog_name="charlstm")
