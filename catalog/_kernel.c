/* The compiled half of catalog/events/columnar.py: decode a batch of Avro
 * single-object-encoded events into columns, by interpreting a program (the
 * schema flattened into opcodes by columnar.py); and split a Kafka record
 * batch into its records for catalog/log/kafka.py.
 *
 * Built with the system C compiler on first use and loaded with ctypes
 * (columnar.py); no Python API is used here. Every read is checked against
 * the record's end and every write against its buffer's capacity: a record
 * this code is unsure of is reported back (status 1) and the caller decodes
 * it with the codec, which decides.
 *
 * Storage: each primitive value is a pair in the flat int64 arrays P and Q
 * (a string's start in the batch buffer and its length; an integer and 0;
 * Q = -1 for null). Level 0 has a row per record; each array or map of the
 * schema is a level with a row per item; level k occupies
 * P[base[k] .. base[k] + cap[k] * ncols[k]), row-major.
 */
#include <stdint.h>
#include <string.h>

/* opcodes; operands a, b = level and column of a value (c = 1 on LONG/NLONG:
 * a timestamp-micros, range-checked) */
enum {
    END = 0, STR, LONG, BOOL, NSTR, NLONG, NBOOL, LIT, UNION, JUMP,
    SEQ, ITEM, NEXT, DUP, JSON_ON, JSON_OFF, SEQ_DONE
};

#define MAX_DEPTH 16
#define MAX_LEVELS 64
#define OPS 5 /* op, a, b, c, d */
#define TS_MIN (-62135596800000000LL) /* 0001-01-01, datetime.min */
#define TS_MAX 253402300799999999LL   /* 9999-12-31 23:59:59.999999 */

static const uint8_t HEX[] = "0123456789abcdef";

/* A zig-zag varint at *pos; 0 and *ok = 0 if truncated or wider than 64 bits. */
static inline int64_t rd_long(const uint8_t *buf, int64_t *pos, int64_t end, int *ok) {
    uint64_t n = 0;
    int shift = 0;
    for (;;) {
        if (*pos >= end || shift > 63) { *ok = 0; return 0; }
        uint8_t b = buf[(*pos)++];
        if (shift == 63 && b > 1) { *ok = 0; return 0; }
        n |= (uint64_t)(b & 0x7F) << shift;
        shift += 7;
        if (!(b & 0x80)) break;
    }
    return (int64_t)(n >> 1) ^ -(int64_t)(n & 1);
}

/* Strict UTF-8, as Python's codec: no overlongs, surrogates or > U+10FFFF. */
static int utf8_ok(const uint8_t *s, int64_t n) {
    int64_t i = 0;
    while (i < n) {
        uint8_t b = s[i];
        if (b < 0x80) { i++; continue; }
        int need; uint8_t lo, hi;
        if (b >= 0xC2 && b <= 0xDF) { need = 1; lo = 0x80; hi = 0xBF; }
        else if (b == 0xE0) { need = 2; lo = 0xA0; hi = 0xBF; }
        else if (b == 0xED) { need = 2; lo = 0x80; hi = 0x9F; }
        else if (b >= 0xE1 && b <= 0xEF) { need = 2; lo = 0x80; hi = 0xBF; }
        else if (b == 0xF0) { need = 3; lo = 0x90; hi = 0xBF; }
        else if (b >= 0xF1 && b <= 0xF3) { need = 3; lo = 0x80; hi = 0xBF; }
        else if (b == 0xF4) { need = 3; lo = 0x80; hi = 0x8F; }
        else return 0;
        if (i + need >= n) return 0;
        if (s[i + 1] < lo || s[i + 1] > hi) return 0;
        for (int j = 2; j <= need; j++)
            if (s[i + j] < 0x80 || s[i + j] > 0xBF) return 0;
        i += need + 1;
    }
    return 1;
}

typedef struct {
    uint8_t *J;
    int64_t cap;
    int64_t *jc; /* write position, "full" flag, record to resume at */
} Json;

static void jlit(Json *j, const uint8_t *lit, int64_t off, int64_t n) {
    int64_t p = j->jc[0];
    if (p + n > j->cap) { j->jc[1] = 1; return; }
    memcpy(j->J + p, lit + off, (size_t)n);
    j->jc[0] = p + n;
}

/* A JSON string as json.dumps(ensure_ascii=False) writes it. */
static void jstr(Json *j, const uint8_t *s, int64_t n) {
    int64_t p = j->jc[0];
    if (p + 6 * n + 2 > j->cap) { j->jc[1] = 1; return; }
    uint8_t *J = j->J;
    J[p++] = '"';
    for (int64_t i = 0; i < n; i++) {
        uint8_t b = s[i];
        if (b == '"' || b == '\\') { J[p++] = '\\'; J[p++] = b; }
        else if (b < 0x20) {
            J[p++] = '\\';
            switch (b) {
            case '\n': J[p++] = 'n'; break;
            case '\r': J[p++] = 'r'; break;
            case '\t': J[p++] = 't'; break;
            case '\b': J[p++] = 'b'; break;
            case '\f': J[p++] = 'f'; break;
            default:
                J[p++] = 'u'; J[p++] = '0'; J[p++] = '0';
                J[p++] = HEX[b >> 4]; J[p++] = HEX[b & 15];
            }
        } else J[p++] = b;
    }
    J[p++] = '"';
    j->jc[0] = p;
}

static void jint(Json *j, int64_t v) {
    int64_t p = j->jc[0];
    if (p + 21 > j->cap) { j->jc[1] = 1; return; }
    uint64_t m;
    if (v < 0) { j->J[p++] = '-'; m = (uint64_t)(-(v + 1)) + 1; }
    else m = (uint64_t)v;
    char tmp[20];
    int k = 0;
    do { tmp[k++] = (char)('0' + m % 10); m /= 10; } while (m);
    while (k) j->J[p++] = (uint8_t)tmp[--k];
    j->jc[0] = p;
}

typedef struct {
    const int64_t *prog, *jumps, *base, *ncols, *cap;
    const uint8_t *lit;
    int64_t *P, *Q, *counter;
    int64_t nlevels;
} Program;

/* Decode one record at pos; its end, -1 if the codec must decide, -2 if full. */
static int64_t record(const Program *pg, const uint8_t *buf, int64_t pos, int64_t end,
                      int64_t r, Json *js_out) {
    int64_t idx[MAX_LEVELS];
    int64_t s_first[MAX_DEPTH], s_left[MAX_DEPTH], s_count[MAX_DEPTH], s_level[MAX_DEPTH];
    int depth = 0, js = 0, ok = 1;
    int64_t pc = 0;
    idx[0] = r;
    for (int64_t k = 1; k < pg->nlevels; k++) idx[k] = 0;
    for (;;) {
        const int64_t *ins = pg->prog + OPS * pc;
        int64_t op = ins[0], a = ins[1], b = ins[2];
        pc++;
        switch (op) {
        case STR: case NSTR: case LONG: case NLONG: case BOOL: case NBOOL: {
            int64_t at = pg->base[a] + idx[a] * pg->ncols[a] + b;
            if (op == NSTR || op == NLONG || op == NBOOL) {
                int64_t u = rd_long(buf, &pos, end, &ok);
                if (!ok || u < 0 || u > 1) return -1;
                if (u == 0) {
                    pg->P[at] = 0; pg->Q[at] = -1;
                    if (js) jlit(js_out, pg->lit, 0, 4);
                    break;
                }
            }
            if (op == STR || op == NSTR) {
                int64_t n = rd_long(buf, &pos, end, &ok);
                if (!ok || n < 0 || n > end - pos) return -1;
                if (!utf8_ok(buf + pos, n)) return -1;
                pg->P[at] = pos; pg->Q[at] = n;
                if (js) jstr(js_out, buf + pos, n);
                pos += n;
            } else if (op == LONG || op == NLONG) {
                int64_t v = rd_long(buf, &pos, end, &ok);
                if (!ok) return -1;
                /* c = 1: timestamp-micros, which Python's datetime must hold */
                if (ins[3] == 1 && (v < TS_MIN || v > TS_MAX)) return -1;
                pg->P[at] = v; pg->Q[at] = 0;
                if (js) jint(js_out, v);
            } else {
                if (pos >= end || buf[pos] > 1) return -1;
                int64_t v = buf[pos++];
                pg->P[at] = v; pg->Q[at] = 0;
                if (js) { if (v) jlit(js_out, pg->lit, 4, 4); else jlit(js_out, pg->lit, 8, 5); }
            }
            break;
        }
        case LIT:
            if (js) jlit(js_out, pg->lit, a, b);
            break;
        case UNION: {
            int64_t u = rd_long(buf, &pos, end, &ok);
            if (!ok || u < 0 || u >= ins[4]) return -1;
            int64_t at = pg->base[a] + idx[a] * pg->ncols[a] + b;
            pg->P[at] = u; pg->Q[at] = 0;
            pc = pg->jumps[ins[3] + u];
            break;
        }
        case JUMP:
            pc = a;
            break;
        case SEQ: {
            if (depth == MAX_DEPTH) return -1;
            int64_t count = rd_long(buf, &pos, end, &ok);
            if (!ok) return -1;
            if (count < 0) {
                if (count == INT64_MIN) return -1;
                count = -count;
                rd_long(buf, &pos, end, &ok); /* the block's size in bytes */
                if (!ok) return -1;
            }
            if (count > end - pos) return -1; /* every item takes a byte at least */
            int64_t child = ins[3];
            s_first[depth] = pg->counter[child];
            s_left[depth] = count;
            s_count[depth] = 0;
            s_level[depth] = child;
            depth++;
            if (count == 0) pc = ins[4]; /* empty: straight to its SEQ_DONE */
            break;
        }
        case ITEM: {
            int d = depth - 1;
            if (s_left[d] == 0) {
                int64_t count = rd_long(buf, &pos, end, &ok);
                if (!ok) return -1;
                if (count < 0) {
                    if (count == INT64_MIN) return -1;
                    count = -count;
                    rd_long(buf, &pos, end, &ok);
                    if (!ok) return -1;
                }
                if (count > end - pos) return -1;
                if (count == 0) { pc = a; break; }
                s_left[d] = count;
            }
            int64_t child = s_level[d];
            int64_t i = pg->counter[child];
            if (i >= pg->cap[child]) { js_out->jc[1] = 2; return -2; }
            pg->counter[child] = i + 1;
            idx[child] = i;
            if (js && s_count[d] > 0) jlit(js_out, pg->lit, 13, 2);
            s_count[d]++;
            s_left[d]--;
            break;
        }
        case NEXT:
            pc = a;
            break;
        case SEQ_DONE: {
            depth--;
            int64_t at = pg->base[a] + idx[a] * pg->ncols[a] + b;
            pg->P[at] = s_first[depth];
            pg->Q[at] = s_count[depth];
            break;
        }
        case DUP: {
            int64_t first = s_first[depth - 1], i = idx[a];
            if (i - first > 256) return -1; /* a huge map: let Python check it */
            int64_t row = pg->base[a] + i * pg->ncols[a];
            int64_t s = pg->P[row], n = pg->Q[row];
            for (int64_t j = first; j < i; j++) {
                int64_t other = pg->base[a] + j * pg->ncols[a];
                if (pg->Q[other] == n && memcmp(buf + pg->P[other], buf + s, (size_t)n) == 0)
                    return -1;
            }
            break;
        }
        case JSON_ON: js = 1; break;
        case JSON_OFF: js = 0; break;
        case END: return pos;
        default: return -1;
        }
    }
}

/* Decode records jc[2].. of the batch; returns where it stopped (< n: grow, resume). */
int64_t catalog_decode(const uint8_t *buf, const int64_t *starts, int64_t n,
                       const uint8_t *prefix, int64_t nprefix,
                       const int64_t *prog, const int64_t *jumps, const uint8_t *lit,
                       int64_t *P, int64_t *Q, const int64_t *base, const int64_t *ncols,
                       const int64_t *cap, int64_t nlevels, int64_t *counter,
                       int8_t *status, int64_t *jstart, int64_t *jlen,
                       uint8_t *J, int64_t jcap, int64_t *jc) {
    if (nlevels > MAX_LEVELS) return -1;
    Program pg = {prog, jumps, base, ncols, cap, lit, P, Q, counter, nlevels};
    Json js = {J, jcap, jc};
    int64_t saved[MAX_LEVELS];
    for (int64_t r = jc[2]; r < n; r++) {
        int64_t s = starts[r], e = starts[r + 1];
        if (e - s < nprefix || memcmp(buf + s, prefix, (size_t)nprefix) != 0) {
            status[r] = 1;
            continue;
        }
        int64_t j0 = jc[0];
        for (int64_t k = 0; k < nlevels; k++) saved[k] = counter[k];
        int64_t pos = record(&pg, buf, s + nprefix, e, r, &js);
        if (jc[1] != 0 || pos != e) {
            jc[0] = j0;
            for (int64_t k = 0; k < nlevels; k++) counter[k] = saved[k];
            if (jc[1] != 0) { jc[2] = r; return r; } /* a buffer is full */
            status[r] = 1;
            continue;
        }
        status[r] = 0;
        jstart[r] = j0;
        jlen[r] = jc[0] - j0;
    }
    jc[2] = n;
    return n;
}

/* Copy the strings (start P, length Q) of the valid rows into Arrow buffers. */
void catalog_gather(const uint8_t *buf, const int64_t *P, const int64_t *Q, const uint8_t *valid,
                    int64_t n, int32_t *offsets, uint8_t *data) {
    int64_t p = 0;
    offsets[0] = 0;
    for (int64_t i = 0; i < n; i++) {
        if (valid[i]) {
            memcpy(data + p, buf + P[i], (size_t)Q[i]);
            p += Q[i];
        }
        offsets[i + 1] = (int32_t)p;
    }
}

void catalog_list_offsets(const int64_t *Q, const uint8_t *valid, int64_t n, int32_t *offsets) {
    int64_t p = 0;
    offsets[0] = 0;
    for (int64_t i = 0; i < n; i++) {
        if (valid[i]) p += Q[i];
        offsets[i + 1] = (int32_t)p;
    }
}

/* The records of one uncompressed Kafka record batch (format v2, for
 * catalog/log/kafka.py): buf[pos, end) holds `count` records, from the first
 * one to the batch's end. Per record i, rec[10i .. 10i + 9]: offset delta,
 * timestamp delta, key start, key length (-1: null), value start, value
 * length (-1: null), first header, header count, and where the headers'
 * bytes start and end (records with the same header bytes have the same
 * headers). Per header j, hdr[4j .. 4j + 3]: key start, key length, value
 * start, value length (-1: null).
 * Returns `count`; -1 if the bytes are not `count` well-formed records that
 * fill [pos, end) exactly, or anything kafka-python's reader would read
 * otherwise or refuse (an attributes byte >= 0x80, a header key that is not
 * UTF-8); -2 if there are more than hcap headers. */
int64_t catalog_kafka_records(const uint8_t *buf, int64_t pos, int64_t end, int64_t count,
                              int64_t *rec, int64_t *hdr, int64_t hcap) {
    int64_t nh = 0;
    for (int64_t i = 0; i < count; i++) {
        int ok = 1;
        int64_t len = rd_long(buf, &pos, end, &ok);
        if (!ok || len < 1 || len > end - pos) return -1;
        int64_t stop = pos + len;
        int64_t *r = rec + 10 * i;
        if (buf[pos] & 0x80) return -1; /* kafka-python reads the attributes as a varint */
        pos++;                            /* (unused in format v2) */
        r[1] = rd_long(buf, &pos, stop, &ok);
        r[0] = rd_long(buf, &pos, stop, &ok);
        int64_t n = rd_long(buf, &pos, stop, &ok);
        if (!ok || n < -1 || n > stop - pos) return -1;
        r[2] = pos;
        r[3] = n;
        if (n > 0) pos += n;
        n = rd_long(buf, &pos, stop, &ok);
        if (!ok || n < -1 || n > stop - pos) return -1;
        r[4] = pos;
        r[5] = n;
        if (n > 0) pos += n;
        n = rd_long(buf, &pos, stop, &ok);
        if (!ok || n < 0 || n > stop - pos) return -1; /* a header takes 2 bytes or more */
        if (n > hcap - nh) return -2;
        r[6] = nh;
        r[7] = n;
        r[8] = pos;
        r[9] = stop;
        for (int64_t j = 0; j < n; j++, nh++) {
            int64_t *h = hdr + 4 * nh;
            int64_t m = rd_long(buf, &pos, stop, &ok);
            if (!ok || m < 0 || m > stop - pos || !utf8_ok(buf + pos, m)) return -1;
            h[0] = pos;
            h[1] = m;
            pos += m;
            m = rd_long(buf, &pos, stop, &ok);
            if (!ok || m < -1 || m > stop - pos) return -1;
            h[2] = pos;
            h[3] = m;
            if (m > 0) pos += m;
        }
        if (!ok || pos != stop) return -1;
    }
    return pos == end ? count : -1;
}
