"""``python -m phi1lib.teacher.offline [flags]`` serves the offline teacher (as ``phi1 teacher serve``)."""

import sys

from phi1lib.teacher.offline.server import main

sys.exit(main())
