import atexit
import os
import sys

from .cli import main

code = main()
if code == 130:
    # Ctrl-C was caught and handled. CPython still ends the process by SIGINT (exit status -2, not 130) when
    # the interrupt landed inside exec() of a string, as dataclasses do while a library is being imported: that
    # sets its "unhandled KeyboardInterrupt" flag for good. Run the exit handlers, then leave with 130 ourselves.
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(130)
sys.exit(code)
