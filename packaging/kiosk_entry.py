"""Entry point of the frozen station app: `flash-kiosk [COMMAND …]`.

Without a command it serves the touch screens (`ui`), as a station does at
boot. freeze_support() must run first: NiceGUI's process pool starts child
processes from this same binary.
"""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    # fork would copy the event loop and its threads into the pool's children.
    multiprocessing.set_start_method("spawn", force=True)
    from kiosk.__main__ import main

    sys.exit(main(sys.argv[1:] or ["ui"]))
