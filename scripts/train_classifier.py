#!/usr/bin/env python
"""`accelerate launch scripts/train_classifier.py [flags]`: same flags as `hf-charnn train-classifier`."""

import sys

from hf_charnn.train_classifier import main

if __name__ == "__main__":
    sys.exit(main())
