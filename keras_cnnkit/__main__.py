"""``python -m keras_cnnkit`` runs the ``cnnkit`` command line."""

import sys

from keras_cnnkit.cli.main import main

sys.exit(main())
