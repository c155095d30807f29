# MQTT uplink for networked boards (issue 7): publishes the flash log's records with QoS 1 through
# micropython-lib's umqtt.simple (its publish() returns only after the broker's PUBACK) and acknowledges
# each record in the log only then, so a record leaves the flash only once the broker has it. After a
# lost connection or a reboot, the unacknowledged records are sent again: at-least-once; the collector
# de-duplicates by (device id, sequence number).
#
# Topic: <prefix>/<device id>/log; payload: seq u32 little-endian + the record.
import struct


def topic(device_id, prefix="edgeloop"):
    return "%s/%s/log" % (prefix, device_id)


def publish_log(log, client, device_id, prefix="edgeloop", limit=None):
    """Sends every record the log has not had acknowledged; returns how many. Raises OSError when the
    connection breaks (the records not yet PUBACKed stay in the log)."""
    t = topic(device_id, prefix)
    n, done = 0, None
    try:
        for seq, p in log.read():
            client.publish(t, struct.pack("<I", seq) + p, qos=1)
            done = seq           # PUBACK received
            n += 1
            if limit is not None and n >= limit:
                break
    finally:
        if done is not None:
            log.ack(done)
    return n


def run(log, make_client, device_id, prefix="edgeloop", retry_ms=200, attempts=None):
    """Connects (make_client() returns a fresh umqtt.simple.MQTTClient), publishes, reconnects after a
    failure, until the log is empty. Returns the number of records sent (with re-sends)."""
    import time
    sent, tries = 0, 0
    while True:
        c = None
        try:
            c = make_client()
            c.connect()
            sent += publish_log(log, c, device_id, prefix)
            c.disconnect()
            return sent
        except OSError:
            tries += 1
            if attempts is not None and tries >= attempts:
                raise
            try:
                if c is not None:
                    c.sock.close()
            except Exception:
                pass
            time.sleep_ms(retry_ms)
