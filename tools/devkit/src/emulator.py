"""The local DynamoDB/SQS emulator (moto), served for the ledger's local stack and tests.

Serial on purpose: moto applies a TransactWriteItems one item at a time, so serving one request at
a time is what keeps a transaction atomic against concurrent requests. It exits by itself when the
process that started it is gone, so a killed test run leaves nothing behind.
"""

import logging
import os
import sys
import threading
import time

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple


def exit_with_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(0.5)
    os._exit(0)


def main() -> None:
    host, port, parent_pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    threading.Thread(target=exit_with_parent, args=(parent_pid,), daemon=True).start()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, app, threaded=False)


if __name__ == "__main__":
    main()
