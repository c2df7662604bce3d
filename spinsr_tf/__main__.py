import sys

from spinsr_tf.cli import main

sys.exit(main())
