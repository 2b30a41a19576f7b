import sys

from uvq_tflite.cli import main

sys.exit(main())
