"""Publish N numbered messages through the Publisher (a subprocess for fault tests).

usage: python -m tests.support.publish_many SPOOL_DIR URL EXCHANGE START COUNT DELAY FLUSH_TIMEOUT
Each message body is {"seq": n}; its message_id is "m<n>". Prints "published <n>" lines.
"""

import sys
import time

from snf_ganeti.config import AmqpConfig
from snf_ganeti.publisher import Publisher


def main(argv):
    spool_dir, url, exchange, start, count, delay, flush_timeout = argv
    amqp = AmqpConfig(urls=(url,), exchange=exchange, spool_dir=spool_dir,
                      connect_timeout=2.0, confirm_timeout=5.0, max_backoff=0.5)
    publisher = Publisher(amqp)
    for seq in range(int(start), int(start) + int(count)):
        publisher.publish("snft.seq", {"seq": seq}, message_id=f"m{seq}")
        print(f"published {seq}", flush=True)
        if float(delay):
            time.sleep(float(delay))
    publisher.close(timeout=float(flush_timeout))
    return 0 if not publisher.spool.entries() else 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
