"""The local DynamoDB/SQS emulator (moto), served for the ledger's local stack and tests.

Serial on purpose: moto applies a TransactWriteItems one item at a time, so serving one request at
a time is what keeps a transaction atomic against concurrent requests. It exits by itself when the
process that started it is gone, so a killed test run leaves nothing behind.

Four changes to moto's behaviour, for speed only, same results:
- moto backs up every table a transaction touches with a deep copy before applying it, so a
  transaction costs O(table size) (measured here: 5 ms on an empty table, 171 ms at 6,000 items).
  Here the transaction backs up only the items it names and restores just those if it is cancelled.
- moto answers a Query on a table's partition key by sorting every item of the table. Here it reads
  only that partition's items (index queries are left as moto does them).
- moto's SendMessage reads all of a queue's attributes, counting every message three times, just to
  see whether a FIFO setting is on: O(queue length) per message sent. Here a standard queue's send
  skips that look-up (a standard queue has no content-based deduplication).
- moto's ReceiveMessage checks every message of the queue, building two datetimes per check to read
  the clock. Here the clock is read with time.time(): the same epoch milliseconds, far cheaper.

One fidelity fix: moto's SendMessageBatch drops each entry's MessageSystemAttributes (SendMessage
keeps them), so the X-Ray `AWSTraceHeader` the API sends never reached the worker. Here each entry's
system attributes are passed on, as SQS does.
"""

import logging
import os
import sys
import threading
import time

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import BaseWSGIServer, run_simple


def exit_with_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(0.5)
    os._exit(0)


def transactions_back_up_items_not_tables() -> None:
    import copy

    from moto.dynamodb import models
    from moto.dynamodb.models.table import Table

    original = models.DynamoDBBackend.transact_write_items

    class TablesAreNotCopied:
        @staticmethod
        def deepcopy(value, memo=None):
            return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    def item_key(backend, op_type, op):
        if op_type != "Put":
            return op["Key"]
        table = backend.get_table(op["TableName"])
        names = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
        return {name: op["Item"][name] for name in names if name in op["Item"]}

    def transact_write_items(self, transact_items):
        saved = []
        for item in transact_items:
            op_type, op = next(iter(item.items()))
            try:
                key = item_key(self, op_type, op)
                current = self.get_item(op["TableName"], key)
            except Exception:
                continue  # moto's own validation reports it
            saved.append((op["TableName"], key, current.to_json()["Attributes"] if current else None))
        models.copy = TablesAreNotCopied
        try:
            return original(self, transact_items)
        except Exception:
            for table_name, key, attrs in reversed(saved):
                if attrs is None:
                    if self.get_item(table_name, key) is not None:
                        self.delete_item(table_name, key)
                else:
                    self.put_item(table_name, attrs)
            raise
        finally:
            models.copy = copy

    models.DynamoDBBackend.transact_write_items = transact_write_items


def queries_read_one_partition() -> None:
    from moto.dynamodb.models.table import Table

    original = Table.query

    def query(self, hash_key, *args, **kwargs):
        index_name = kwargs.get("index_name", args[6] if len(args) > 6 else None)
        if index_name is not None or not self.range_key_attr:
            return original(self, hash_key, *args, **kwargs)
        self.all_items = lambda: list(self.items.get(hash_key, {}).values())
        try:
            return original(self, hash_key, *args, **kwargs)
        finally:
            del self.all_items

    Table.query = query


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
    import time

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


def main() -> None:
    host, port, parent_pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    threading.Thread(target=exit_with_parent, args=(parent_pid,), daemon=True).start()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    transactions_back_up_items_not_tables()
    queries_read_one_partition()
    standard_queue_sends_skip_the_attribute_scan()
    sqs_reads_the_clock_cheaply()
    batch_sends_keep_system_attributes()
    app = DomainDispatcherApplication(create_backend_app)
    # One request at a time means bursts of clients wait in the listen backlog: werkzeug's 128 would
    # refuse connections during a spike, so allow as many as the kernel does.
    BaseWSGIServer.request_queue_size = 4096
    run_simple(host, port, app, threaded=False)


if __name__ == "__main__":
    main()
