"""The local emulators, as one child process of the ledger's local stack and tests.

- DynamoDB: AWS's own DynamoDB Local (a Java program, run in memory), started as a child of this
  process. It serves requests concurrently and honours ClientRequestToken, as DynamoDB does.
- SQS: moto, served by this process (DynamoDB requests to this port reach moto's own DynamoDB,
  which only the emulator bench uses). moto's server is serial here: its SQS model is not built for
  concurrent requests, and SQS calls are short.

Both stop when the process that started this one is gone: this process watches its parent, and
DynamoDB Local is bound to this process by the kernel (PR_SET_PDEATHSIG), so a killed test run leaves
nothing behind.

Two changes to moto's SQS, for speed only, same results:
- moto's SendMessage reads all of a queue's attributes, counting every message three times, just to
  see whether a FIFO setting is on: O(queue length) per message sent. Here a standard queue's send
  skips that look-up (a standard queue has no content-based deduplication).
- moto's ReceiveMessage checks every message of the queue, building two datetimes per check to read
  the clock. Here the clock is read with time.time(): the same epoch milliseconds, far cheaper.

One behaviour moto lacks, SQS fair queues: on a standard queue, messages carry a MessageGroupId
(the ledger sends the tenant) and SQS delivers quiet groups' messages before those of a group with a
backlog in flight. Here a standard queue's receive offers its visible messages ordered by how many
messages of their group are in flight, fewest first, then in queue order. SQS starts to prefer once a
group holds over ~10% of the in-flight messages; this emulation prefers at any imbalance, which is
the same direction and makes a small local test see it.

One fidelity fix: moto's SendMessageBatch drops each entry's MessageSystemAttributes (SendMessage
keeps them), so the X-Ray `AWSTraceHeader` the API sends never reached the worker. Here each entry's
system attributes are passed on, as SQS does.
"""

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import BaseWSGIServer, run_simple

PR_SET_PDEATHSIG = 1


def exit_with_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(0.5)
    os._exit(0)


def die_with_this_process() -> None:
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def start_dynamodb_local(host: str, port: int, home: str) -> subprocess.Popen:
    command = [
        "java",
        "-Xmx1g",
        f"-Djava.library.path={os.path.join(home, 'DynamoDBLocal_lib')}",
        "-jar",
        os.path.join(home, "DynamoDBLocal.jar"),
        "-inMemory",
        # One database whatever the credentials and region of the caller.
        "-sharedDb",
        "-port",
        str(port),
    ]
    return subprocess.Popen(
        command,
        cwd=home,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        preexec_fn=die_with_this_process,
    )


def standard_queue_sends_skip_the_attribute_scan() -> None:
    from moto.sqs.models import Queue, SQSBackend

    original = SQSBackend.send_message
    full_attributes = Queue.attributes
    fifo_only = property(lambda queue: full_attributes.fget(queue) if queue.fifo_queue else {})

    def send_message(self, queue_name, *args, **kwargs):
        Queue.attributes = fifo_only
        try:
            return original(self, queue_name, *args, **kwargs)
        finally:
            Queue.attributes = full_attributes

    SQSBackend.send_message = send_message


def sqs_reads_the_clock_cheaply() -> None:
    from moto.sqs import models

    original = models.unix_time_millis
    models.unix_time_millis = lambda dt=None: time.time() * 1000.0 if dt is None else original(dt)


def batch_sends_keep_system_attributes() -> None:
    from moto.sqs.models import SQSBackend

    original = SQSBackend.send_message_batch

    def send_message_batch(self, queue_name, entries):
        # The batch sends its entries in order, one send_message each: hand each its attributes.
        pending = [entry.get("MessageSystemAttributes") for entry in entries.values()]
        send_one = self.send_message

        def send_message(*args, **kwargs):
            attributes = pending.pop(0) if pending else None
            if attributes and not kwargs.get("system_attributes"):
                kwargs["system_attributes"] = attributes
            return send_one(*args, **kwargs)

        self.send_message = send_message
        try:
            return original(self, queue_name, entries)
        finally:
            del self.send_message

    SQSBackend.send_message_batch = send_message_batch


def standard_queues_deliver_quiet_groups_first() -> None:
    from moto.sqs.models import Queue

    queued = Queue.messages

    def messages(queue):
        visible = queued.fget(queue)
        if queue.fifo_queue or not queue.pending_messages:
            return visible
        in_flight: dict = {}
        for message in queue.pending_messages:
            if message.visible:  # its visibility timed out: no longer in flight
                continue
            in_flight[message.group_id] = in_flight.get(message.group_id, 0) + 1
        # sorted() is stable: queue order within a group, and among equally busy groups.
        return sorted(visible, key=lambda message: in_flight.get(message.group_id, 0))

    Queue.messages = property(messages)


def main() -> None:
    host, dynamodb_port, moto_port, parent_pid, home = (
        sys.argv[1],
        int(sys.argv[2]),
        int(sys.argv[3]),
        int(sys.argv[4]),
        sys.argv[5],
    )
    threading.Thread(target=exit_with_parent, args=(parent_pid,), daemon=True).start()
    dynamodb = start_dynamodb_local(host, dynamodb_port, home)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    threading.Thread(target=lambda: (dynamodb.wait(), os._exit(3)), daemon=True).start()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    standard_queue_sends_skip_the_attribute_scan()
    sqs_reads_the_clock_cheaply()
    batch_sends_keep_system_attributes()
    standard_queues_deliver_quiet_groups_first()
    app = DomainDispatcherApplication(create_backend_app)
    # One request at a time means bursts of clients wait in the listen backlog: werkzeug's 128 would
    # refuse connections during a spike, so allow as many as the kernel does.
    BaseWSGIServer.request_queue_size = 4096
    run_simple(host, moto_port, app, threaded=False)


if __name__ == "__main__":
    main()
