"""The C helpers of Model.predict's hot path (_edgeloop.run, _edgeloop.copy) on the unix port: every
length checked, hostile arguments rejected with clear errors."""
from __future__ import annotations

CODE = r"""
import _edgeloop
from array import array

def err(f, *a):
    try:
        f(*a)
    except Exception as e:
        return type(e).__name__
    return 'ok'

b = bytearray(b'0123456789')
_edgeloop.copy(b, b'abc', 3)
print('copy', bytes(b))
_edgeloop.copy(memoryview(b)[2:], b, 8)      # overlapping, forwards
print('overlap', bytes(b))
print('errors', err(_edgeloop.copy, b, b'abc', 4), err(_edgeloop.copy, b'abc', b, 2),
      err(_edgeloop.copy, b, [1, 2], 2), err(_edgeloop.copy, b, b'abc', -1), err(_edgeloop.copy, b, b, 11))

seen = []
def k(blob, arena, args):
    seen.append((len(blob), len(arena), args[0]))
_edgeloop.run(b'xy', bytearray(3), (k, array('i', [5]), k, array('i', [6])))
print('run', seen)
print('run errors', err(_edgeloop.run, b'', b'', [k, array('i', [1])]), err(_edgeloop.run, b'', b'', (k,)),
      err(_edgeloop.run, b'', bytearray(1), (_edgeloop.fully_connected, array('i', [0]))))
arena = bytearray(6)
seen.clear()
_edgeloop.run(b'', arena, (k, array('i', [7])), memoryview(arena)[1:4], b'xyzw')
print('run copy', bytes(arena), seen)
print('run copy errors', err(_edgeloop.run, b'', arena, (), memoryview(arena)[1:4], [1, 2, 3]),
      err(_edgeloop.run, b'', arena, (), memoryview(arena)[1:4], b'xy'),
      err(_edgeloop.run, b'', arena, (), memoryview(arena)[1:4]),
      err(_edgeloop.run, b'', arena, (), b'abc', b'xyz'))
"""


def test_run_and_copy(unix_target):
    out = unix_target.exec(CODE)
    assert "copy b'abc3456789'" in out
    assert "overlap b'ababc34567'" in out
    # n past dst or src, a read-only dst, a list, a negative n, n past both
    assert "errors ValueError TypeError TypeError ValueError ValueError" in out
    assert "run [(2, 3, 5), (2, 3, 6)]" in out
    # a list (mutable under the loop), a kernel without args, a kernel's own word check
    assert "run errors TypeError ValueError ValueError" in out
    # with an input view: x copied into it first, then the ops
    assert "run copy b'\\x00xyz\\x00\\x00' [(0, 6, 7)]" in out
    # x without the buffer protocol, x shorter than the view, a view without x, a read-only view
    assert "run copy errors ValueError ValueError TypeError TypeError" in out
