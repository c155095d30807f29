# MQTT uplink for networked boards (issue 7), with end-to-end acknowledgement (docs/LOOP.md).
#
# The device publishes its flash log's records with QoS 1 through micropython-lib's umqtt.simple on
#     <prefix>/<device id>/log     payload: seq u32 little-endian + the record
# and keeps every record on flash until a *collector* says it has written it durably; the broker's
# PUBACK is not enough (a broker may lose PUBACKed messages, e.g. around a restart). Collectors answer on
#     <prefix>/<device id>/ack     payload: (first u32, last u32) little-endian pairs, inclusive ranges
# of sequence numbers they have fsync'ed to Parquet. Several collectors share the device's records, so
# each acknowledges the ranges it stored itself; the device merges them in a bitmap over a window of
# `window` records starting at `base` (the lowest sequence number not acknowledged) and frees the flash
# log up to base - 1. Records not acknowledged `timeout_ms` after the last progress, or when the
# connection was lost, are sent again; after a reboot everything above the log's ack point is sent
# again. At-least-once: the collectors drop duplicates by (device id, sequence number).
import struct
import time

from micropython import const

_WINDOW = const(64)
_TIMEOUT_MS = const(3000)


def topic(device_id, prefix="edgeloop"):
    return "%s/%s/log" % (prefix, device_id)


def ack_topic(device_id, prefix="edgeloop"):
    return "%s/%s/ack" % (prefix, device_id)


def _u32(b, i):
    return b[i] | b[i + 1] << 8 | b[i + 2] << 16 | b[i + 3] << 24


class Uplink:
    """Sends a FlashLog's records over a connected umqtt.simple client and frees them on collector acks.
    Call connected(client) after every (re)connect, then poll() regularly (or drain())."""

    def __init__(self, log, device_id, prefix="edgeloop", window=_WINDOW, timeout_ms=_TIMEOUT_MS):
        if window < 8 or window % 8:
            raise ValueError("uplink: window is a positive multiple of 8")
        self.log = log
        self.t_log = topic(device_id, prefix)
        self.t_ack = ack_topic(device_id, prefix)
        self._t_ack = self.t_ack.encode()
        self.window, self.timeout_ms = window, timeout_ms
        self.bits = bytearray(window // 8)   # bit (seq % window) set: seq acknowledged, base <= seq < base + window
        self.base = log.acked + 1
        self.next = self.base                # next sequence number to (re)send
        self._it = None                      # log.read() generator positioned at self.next
        self._hdr = bytearray(4)
        self.c = None
        self.t_progress = time.ticks_ms()
        self.hi = self.base                  # above every sequence number sent since boot
        self.sent = self.resent = self.acks = 0

    def connected(self, client, set_callback=True):
        """A freshly connected client: subscribes to the ack topic, re-sends what is unacknowledged. An
        application that shares the client keeps its own callback (set_callback=False) and passes the
        messages on to on_message()."""
        self.c = client
        try:   # TCP_NODELAY (IPPROTO_TCP 6, option 1): umqtt writes a packet in pieces, and Nagle's algorithm
            client.sock.setsockopt(6, 1, 1)   # with delayed ACKs would hold each publish ~40 ms
        except (OSError, AttributeError, TypeError):
            pass
        if set_callback:
            client.set_callback(self.on_message)
        client.subscribe(self.t_ack, 1)
        self._rewind()

    def _rewind(self):
        self.next, self._it = self.base, None
        self.t_progress = time.ticks_ms()

    def _bit(self, seq):
        i = seq % self.window
        return self.bits[i >> 3] & (1 << (i & 7))

    def on_message(self, t, msg):
        """An incoming MQTT message; True when it was this device's ack topic."""
        if t != self._t_ack:
            return False
        base, end = self.base, self.base + self.window
        if end > self.log.next_seq:
            end = self.log.next_seq
        for i in range(0, len(msg) - 7, 8):
            a, b = _u32(msg, i), _u32(msg, i + 4)
            if a < base:
                a = base
            if b >= end:
                b = end - 1
            while a <= b:
                j = a % self.window
                self.bits[j >> 3] |= 1 << (j & 7)
                a += 1
        self.acks += 1
        self._advance()
        return True

    def _jump(self, base):
        """Moves the window to `base` (records below it freed, or dropped by the log's size bound)."""
        if base - self.base >= self.window:
            for i in range(len(self.bits)):
                self.bits[i] = 0
        else:
            while self.base < base:
                j = self.base % self.window
                self.bits[j >> 3] &= ~(1 << (j & 7))
                self.base += 1
        self.base = base
        if self.next < base:
            self.next, self._it = base, None

    def _advance(self):
        top = self.log.next_seq
        moved = False
        while self.base < top and self._bit(self.base):
            j = self.base % self.window
            self.bits[j >> 3] &= ~(1 << (j & 7))
            self.base += 1
            moved = True
        if moved:
            self._free(False)
            if self.next < self.base:
                self.next, self._it = self.base, None
            self.t_progress = time.ticks_ms()

    def _free(self, all_acked):
        """Frees the log up to base - 1. Acknowledging the log's last record makes it start a new
        segment file; in a steady flow (each record acknowledged soon after it is appended) that would
        mean a file per record, so the last record is held back while the current segment is less than
        half full: at most half a segment is sent again after a reboot. drain() frees everything."""
        log, seq = self.log, self.base - 1
        if (not all_acked and seq >= log.next_seq - 1
                and 2 * getattr(log, "_cur_size", 0) < getattr(log, "segment_size", 0)):
            seq = log.next_seq - 2
        log.ack(seq)

    def pending(self):
        """Records on the log not acknowledged by a collector yet."""
        return self.log.next_seq - self.base

    def _send_next(self):
        """Publishes the next unacknowledged record in the window; False when there is none."""
        top = self.log.next_seq
        while self.next < top and self.next < self.base + self.window:
            it = self._it
            fresh = it is None
            if it is None:
                it = self._it = self.log.read(self.next - 1)
            try:
                seq, p = next(it)
            except StopIteration:
                self._it = None
                if fresh:       # records next..top-1 are unreadable (a torn tail): nothing to send
                    self.next = top
                    return False
                continue        # the generator predates records appended since: read again
            self.next = seq + 1
            if seq < self.base or self._bit(seq):
                continue
            struct.pack_into("<I", self._hdr, 0, seq)
            self.c.publish(self.t_log, self._hdr + p, False, 1)  # type: ignore[union-attr]  # returns after the PUBACK
            self.sent += 1
            if seq < self.hi:
                self.resent += 1
            else:
                self.hi = seq + 1
            return True
        return False

    def poll(self):
        """One step: handles incoming acks, sends at most one record, re-sends after the timeout.
        Raises OSError when the connection breaks (reconnect, then call connected())."""
        if self.log.acked >= self.base:      # the log dropped unsent records (size bound) or was acked
            self._jump(self.log.acked + 1)
        self.c.check_msg()  # type: ignore[union-attr]
        if self._send_next():
            return True
        if self.base < self.log.next_seq and time.ticks_diff(time.ticks_ms(), self.t_progress) > self.timeout_ms:
            self._rewind()
        return False

    def drain(self, timeout_ms=None):
        """poll() until every record on the log is acknowledged (or timeout_ms passed): True when empty."""
        t0 = time.ticks_ms()
        while self.pending() > 0:
            if not self.poll():
                if timeout_ms is not None and time.ticks_diff(time.ticks_ms(), t0) > timeout_ms:
                    return False
                time.sleep_ms(2)
        self._free(True)
        return True


def run(log, make_client, device_id, prefix="edgeloop", retry_ms=200, attempts=None, window=_WINDOW,
        timeout_ms=_TIMEOUT_MS):
    """Connects (make_client() returns a fresh umqtt.simple.MQTTClient), sends and re-sends until a
    collector acknowledged every record of the log, reconnecting after failures. Returns the number of
    records published (re-sends included). `attempts` bounds the consecutive failed connections."""
    up = Uplink(log, device_id, prefix, window, timeout_ms)
    tries = 0
    while True:
        c = None
        try:
            c = make_client()
            c.connect()
            up.connected(c)
            tries = 0
            up.drain()
            c.disconnect()
            return up.sent
        except Exception as e:  # noqa: BLE001
            # umqtt's ways of saying "connection lost / refused"; anything else is a bug: raise it
            if not isinstance(e, (OSError, IndexError, AssertionError)) and type(e).__name__ != "MQTTException":
                raise
            tries += 1
            if attempts is not None and tries >= attempts:
                raise
            try:
                if c is not None and c.sock is not None:
                    c.sock.close()
            except Exception:
                pass
            time.sleep_ms(retry_ms)
