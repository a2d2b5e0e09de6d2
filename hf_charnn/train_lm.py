"""`accelerate launch -m hf_charnn.train_lm [flags]`: the `hf-charnn train-lm` command as a module."""

import sys

from .cli import main as cli_main


def main() -> int:
    return cli_main(["train-lm", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
