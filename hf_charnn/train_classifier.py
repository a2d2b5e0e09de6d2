"""`accelerate launch -m hf_charnn.train_classifier [flags]`: the `hf-charnn train-classifier` command as a module."""

import sys

from .cli import main as cli_main


def main() -> int:
    return cli_main(["train-classifier", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
