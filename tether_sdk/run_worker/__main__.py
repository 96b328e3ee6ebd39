import sys

from tether_sdk.cli import run_worker_main

sys.exit(run_worker_main())
