#!/usr/bin/env python
"""`accelerate launch scripts/train_lm.py [flags]`: same flags as `hf-charnn train-lm`."""

import sys

from hf_charnn.train_lm import main

if __name__ == "__main__":
    sys.exit(main())
