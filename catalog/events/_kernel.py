"""The compiled half of :mod:`catalog.events.columnar` (numba; imported only by it).

:func:`decode` runs a small *program* — the schema flattened into opcodes by
:mod:`catalog.events.columnar` — over every record of a batch. An interpreter
rather than generated code: numba compiles this one fixed module once per
install (and caches the machine code), where code generated per schema took
40 s to compile; and a schema change needs no new code here.

Storage: every primitive value is a pair in two flat int64 arrays ``P`` and
``Q`` (a string's start in the batch buffer and its length; an integer and 0;
``Q = -1`` for null). Level 0 has a row per record; each array or map of the
schema is a level of its own with a row per item. Level ``k`` occupies
``P[base[k] : base[k] + cap[k] * ncols[k]]``, row-major.
"""

# ruff: noqa: N803, N806, PLR0912, PLR0915, C901, SIM109, E501
# mypy: ignore-errors

import numpy as np
from numba import njit

# opcodes (columnar.py writes programs of them; keep the two in step)
END = 0
STR = 1  # a=level b=col
LONG = 2  # a=level b=col
BOOL = 3  # a=level b=col
NSTR = 4  # ["null", "string"]
NLONG = 5  # ["null", "long"|"int"]
NBOOL = 6  # ["null", "boolean"]
LIT = 7  # a=offset b=length: JSON text, written when JSON is on
UNION = 8  # a=level b=col c=first jump-table entry d=branches
JUMP = 9  # a=target
SEQ = 10  # c=child level d=pc of its SEQ_DONE: an array or map begins
ITEM = 11  # a=pc of SEQ_DONE: the loop head: next item, or the sequence's end
NEXT = 12  # a=pc of ITEM: end of one item
DUP = 13  # a=level: the map key just read repeats an earlier key of the map
JSON_ON = 14
JSON_OFF = 15
SEQ_DONE = 16  # a=level b=col: store the finished sequence's (first, count)

U64_1 = np.uint64(1)
HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
MAX_DEPTH = 16


@njit(cache=True, nogil=True)
def _long(buf, pos, end):
    """Zig-zag varint; pos -1 if truncated or wider than 64 bits (Python decides)."""
    if pos >= end:
        return np.int64(0), -1
    b = buf[pos]
    pos += 1
    n = np.uint64(b & 0x7F)
    shift = 7
    while b & 0x80:
        if pos >= end or shift > 63:
            return np.int64(0), -1
        b = buf[pos]
        pos += 1
        if shift == 63 and b > 1:
            return np.int64(0), -1
        n |= np.uint64(b & 0x7F) << np.uint64(shift)
        shift += 7
    return np.int64(n >> U64_1) ^ -np.int64(n & U64_1), pos


@njit(cache=True, nogil=True)
def _utf8_ok(buf, i, end):
    """Strict UTF-8, as Python's codec: no overlongs, surrogates or > U+10FFFF."""
    while i < end:
        b = buf[i]
        if b < 0x80:
            i += 1
            continue
        if 0xC2 <= b <= 0xDF:
            need, lo, hi = 1, 0x80, 0xBF
        elif b == 0xE0:
            need, lo, hi = 2, 0xA0, 0xBF
        elif b == 0xED:
            need, lo, hi = 2, 0x80, 0x9F
        elif 0xE1 <= b <= 0xEF:
            need, lo, hi = 2, 0x80, 0xBF
        elif b == 0xF0:
            need, lo, hi = 3, 0x90, 0xBF
        elif 0xF1 <= b <= 0xF3:
            need, lo, hi = 3, 0x80, 0xBF
        elif b == 0xF4:
            need, lo, hi = 3, 0x80, 0x8F
        else:
            return False
        if i + need >= end:
            return False
        c = buf[i + 1]
        if c < lo or c > hi:
            return False
        for j in range(2, need + 1):
            c = buf[i + j]
            if c < 0x80 or c > 0xBF:
                return False
        i += need + 1
    return True


@njit(cache=True, nogil=True)
def _jlit(J, jc, lit, off, n):
    p = jc[0]
    if p + n > J.shape[0]:
        jc[1] = 1
        return
    for k in range(n):
        J[p + k] = lit[off + k]
    jc[0] = p + n


@njit(cache=True, nogil=True)
def _jstr(J, jc, buf, s, n):
    """A JSON string as ``json.dumps(ensure_ascii=False)`` writes it."""
    p = jc[0]
    if p + 6 * n + 2 > J.shape[0]:
        jc[1] = 1
        return
    J[p] = 34
    p += 1
    for i in range(s, s + n):
        b = buf[i]
        if b == 34 or b == 92:
            J[p] = 92
            J[p + 1] = b
            p += 2
        elif b < 0x20:
            J[p] = 92
            if b == 10:
                J[p + 1] = 110
                p += 2
            elif b == 13:
                J[p + 1] = 114
                p += 2
            elif b == 9:
                J[p + 1] = 116
                p += 2
            elif b == 8:
                J[p + 1] = 98
                p += 2
            elif b == 12:
                J[p + 1] = 102
                p += 2
            else:
                J[p + 1] = 117
                J[p + 2] = 48
                J[p + 3] = 48
                J[p + 4] = HEX[b >> 4]
                J[p + 5] = HEX[b & 15]
                p += 6
        else:
            J[p] = b
            p += 1
    J[p] = 34
    jc[0] = p + 1


@njit(cache=True, nogil=True)
def _jint(J, jc, v):
    p = jc[0]
    if p + 21 > J.shape[0]:
        jc[1] = 1
        return
    if v < 0:
        J[p] = 45
        p += 1
        m = np.uint64(-(v + 1)) + U64_1
    else:
        m = np.uint64(v)
    digits = 1
    t = m // np.uint64(10)
    while t:
        digits += 1
        t //= np.uint64(10)
    for k in range(digits - 1, -1, -1):
        J[p + k] = 48 + np.uint8(m % np.uint64(10))
        m //= np.uint64(10)
    jc[0] = p + digits


@njit(cache=True, nogil=True)
def _record(buf, pos, end, r, prog, jumps, lit, P, Q, base, ncols, cap, counter, J, jc, idx, stack):
    """Decode one record at ``pos``; its end position, -1 if it is not ours to decode
    (the codec decides), -2 if a level is full (jc[1] = 2: grow and rerun)."""
    idx[0] = r
    # the open sequences: first item, items left in the block, items so far, level
    s_first = stack[0]
    s_left = stack[1]
    s_count = stack[2]
    s_level = stack[3]
    depth = 0
    js = False
    pc = 0
    while True:
        op = prog[pc, 0]
        a = prog[pc, 1]
        b = prog[pc, 2]
        pc += 1
        if op == STR or op == NSTR:
            at = base[a] + idx[a] * ncols[a] + b
            if op == NSTR:
                u, pos = _long(buf, pos, end)
                if pos < 0 or u < 0 or u > 1:
                    return -1
                if u == 0:
                    P[at] = 0
                    Q[at] = -1
                    if js:
                        _jlit(J, jc, lit, 0, 4)
                    continue
            n, pos = _long(buf, pos, end)
            if pos < 0 or n < 0 or n > end - pos:
                return -1
            if not _utf8_ok(buf, pos, pos + n):
                return -1
            P[at] = pos
            Q[at] = n
            if js:
                _jstr(J, jc, buf, pos, n)
            pos += n
        elif op == LONG or op == NLONG:
            at = base[a] + idx[a] * ncols[a] + b
            if op == NLONG:
                u, pos = _long(buf, pos, end)
                if pos < 0 or u < 0 or u > 1:
                    return -1
                if u == 0:
                    P[at] = 0
                    Q[at] = -1
                    if js:
                        _jlit(J, jc, lit, 0, 4)
                    continue
            v, pos = _long(buf, pos, end)
            if pos < 0:
                return -1
            P[at] = v
            Q[at] = 0
            if js:
                _jint(J, jc, v)
        elif op == BOOL or op == NBOOL:
            at = base[a] + idx[a] * ncols[a] + b
            if op == NBOOL:
                u, pos = _long(buf, pos, end)
                if pos < 0 or u < 0 or u > 1:
                    return -1
                if u == 0:
                    P[at] = 0
                    Q[at] = -1
                    if js:
                        _jlit(J, jc, lit, 0, 4)
                    continue
            if pos >= end or buf[pos] > 1:
                return -1
            v = buf[pos]
            pos += 1
            P[at] = v
            Q[at] = 0
            if js:
                if v:
                    _jlit(J, jc, lit, 4, 4)
                else:
                    _jlit(J, jc, lit, 8, 5)
        elif op == LIT:
            if js:
                _jlit(J, jc, lit, a, b)
        elif op == UNION:
            u, pos = _long(buf, pos, end)
            if pos < 0 or u < 0 or u >= prog[pc - 1, 4]:
                return -1
            at = base[a] + idx[a] * ncols[a] + b
            P[at] = u
            Q[at] = 0
            pc = jumps[prog[pc - 1, 3] + u]
        elif op == JUMP:
            pc = a
        elif op == SEQ:
            if depth == MAX_DEPTH:
                return -1
            count, pos = _long(buf, pos, end)
            if pos < 0:
                return -1
            if count < 0:
                count = -count
                _, pos = _long(buf, pos, end)
                if pos < 0 or count < 0:
                    return -1
            if count > end - pos:  # every item takes a byte at least
                return -1
            child = prog[pc - 1, 3]
            s_first[depth] = counter[child]
            s_left[depth] = count
            s_count[depth] = 0
            s_level[depth] = child
            depth += 1
            if count == 0:
                pc = prog[pc - 1, 4]  # an empty sequence: straight to its SEQ_DONE
        elif op == ITEM:
            d = depth - 1
            if s_left[d] == 0:
                count, pos = _long(buf, pos, end)
                if pos < 0:
                    return -1
                if count < 0:
                    count = -count
                    _, pos = _long(buf, pos, end)
                    if pos < 0 or count < 0:
                        return -1
                if count > end - pos:
                    return -1
                if count == 0:
                    pc = a  # the SEQ_DONE after the loop
                    continue
                s_left[d] = count
            child = s_level[d]
            i = counter[child]
            if i >= cap[child]:
                jc[1] = 2
                return -2
            counter[child] = i + 1
            idx[child] = i
            if js and s_count[d] > 0:
                _jlit(J, jc, lit, 13, 2)
            s_count[d] += 1
            s_left[d] -= 1
        elif op == NEXT:
            pc = a
        elif op == SEQ_DONE:
            depth -= 1
            at = base[a] + idx[a] * ncols[a] + b
            P[at] = s_first[depth]
            Q[at] = s_count[depth]
        elif op == DUP:
            d = depth - 1
            first = s_first[d]
            i = idx[a]
            if i - first > 256:
                return -1  # a huge map: let Python check it
            row = base[a] + i * ncols[a]
            s = P[row]
            n = Q[row]
            for j in range(first, i):
                other = base[a] + j * ncols[a]
                if Q[other] == n:
                    t = P[other]
                    same = True
                    for k in range(n):
                        if buf[s + k] != buf[t + k]:
                            same = False
                            break
                    if same:
                        return -1
        elif op == JSON_ON:
            js = True
        elif op == JSON_OFF:
            js = False
        elif op == END:
            return pos
        else:
            return -1


@njit(cache=True, nogil=True)
def decode(
    buf,
    starts,
    prefix,
    prog,
    jumps,
    lit,
    P,
    Q,
    base,
    ncols,
    cap,
    counter,
    status,
    jstart,
    jlen,
    J,
    jc,
):
    """Decode the records from ``jc[2]`` on; returns where it stopped (< n: grow, rerun)."""
    n = starts.shape[0] - 1
    levels = ncols.shape[0]
    saved = np.zeros(levels, np.int64)
    idx = np.zeros(levels, np.int64)
    stack = np.zeros((4, MAX_DEPTH), np.int64)
    for r in range(jc[2], n):
        s = starts[r]
        e = starts[r + 1]
        ok = e - s >= prefix.shape[0]
        if ok:
            for k in range(prefix.shape[0]):
                if buf[s + k] != prefix[k]:
                    ok = False
                    break
        if not ok:
            status[r] = 1
            continue
        j0 = jc[0]
        for k in range(levels):
            saved[k] = counter[k]
        pos = _record(
            buf,
            s + len(prefix),
            e,
            r,
            prog,
            jumps,
            lit,
            P,
            Q,
            base,
            ncols,
            cap,
            counter,
            J,
            jc,
            idx,
            stack,
        )
        if jc[1] != 0 or pos != e:
            jc[0] = j0
            for k in range(levels):
                counter[k] = saved[k]
            if jc[1] != 0:  # a buffer is full: the caller grows it and resumes here
                jc[2] = r
                return r
            status[r] = 1
            continue
        status[r] = 0
        jstart[r] = j0
        jlen[r] = jc[0] - j0
    jc[2] = n
    return n


@njit(cache=True, nogil=True)
def gather(buf, P, Q, valid, offsets, data):
    """Copy the strings (start P, length Q) of the valid rows into Arrow buffers."""
    p = 0
    offsets[0] = 0
    for i in range(P.shape[0]):
        if valid[i]:
            s = P[i]
            n = Q[i]
            data[p : p + n] = buf[s : s + n]
            p += n
        offsets[i + 1] = p


@njit(cache=True, nogil=True)
def list_offsets(Q, valid, offsets):
    p = 0
    offsets[0] = 0
    for i in range(Q.shape[0]):
        if valid[i]:
            p += Q[i]
        offsets[i + 1] = p
