#!/usr/bin/env python3
"""Convert official StyleGAN2 weights into a stylejax checkpoint.

    python convert/convert_weights.py SRC DST [--network G_ema] [--force]

The same as `stylejax convert`; see `stylejax convert --help`.
"""

import sys

from stylejax.cli import main

if __name__ == "__main__":
    sys.exit(main(["convert", *sys.argv[1:]]))
