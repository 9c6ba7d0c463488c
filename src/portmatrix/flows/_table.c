/* The flow table's group-by in C: packet rows into flow records, in place.
 *
 * The table's records are an array of structs (Record, the layout of
 * portmatrix.flows.store); a hash index maps each flow key to its latest
 * record. Each packet row finds its record through the index and updates its
 * counters where they are, or starts a record: at a new key, and at a pure
 * SYN that starts a new connection on the same 5-tuple. That is what the numpy
 * version (flows/records.py cutting a batch into records, flows/table.py
 * merging them) works out with sorts, batch by batch; it stays the reference,
 * and the tests check that both leave the very same records.
 *
 * Live watching ends flows as it goes: each record keeps `prev`, the key's
 * record before it (-1 for the first), so a key's records are found without a
 * scan; `update` can say which record each row went to (`where`), so the
 * records changed since a tick are known without a scan either; and `remove`
 * takes ended keys out of the index (backward-shift deletion: no tombstones,
 * so probes stay as short as they were).
 *
 * Bounds: every array comes from Python as a buffer whose length is checked
 * against the row count; record and slot indices come only from this file's
 * own writes, and a slot never points past `used`. A full store or index stops
 * the update before the row that needs room; the caller grows it and goes on.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { FIN = 0x01, SYN = 0x02, RST = 0x04, ACK = 0x10 };
enum { PACKET = 0, JOINED_FRAGMENT = 4 }; /* decode.batch: row kind, fragment state */
enum { FRAMES = 3 };
enum { DONE = 0, STORE_FULL = 1, INDEX_FULL = 2 };
enum { AHEAD = 8 }; /* rows whose slot, then record, are fetched before they are used */

typedef struct {
    uint64_t hash, a_hi, a_lo, b_hi, b_lo;
    int64_t first_ts, last_ts, pkts_a, pkts_b, bytes_a, bytes_b, isn, isn0, frame[FRAMES];
    int32_t a_port, b_port, iface, file[FRAMES];
    int16_t icmp_req, flags_a, flags_b, err_type, err_code, vlan_lo, vlan_hi;
    uint8_t proto, encap;
    int8_t first_dir, open_dir, answer_dir, err_dir;
    uint8_t syn_start, has_syn, cals, tentative;
    int64_t prev; /* the key's record before this one, -1: the first (not in records.RECORD) */
} Record;

/* ---- the key's hash: decode/keyhash.py's mix of five words ---- */

static const uint64_t K[6] = {0x9E3779B97F4A7C15ULL, 0xBF58476D1CE4E5B9ULL, 0x94D049BB133111EBULL,
                              0xD6E8FEB86659FD93ULL, 0xA0761D6478BD642FULL, 0xE7037ED1A0B428DBULL};

static inline uint64_t mix5(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e) {
    uint64_t w[5] = {a, b, c, d, e}, h = K[0];
    for (int i = 0; i < 5; i++) {
        h = (h ^ w[i]) * K[(i + 1) % 6];
        h ^= h >> 31;
    }
    h *= K[5];
    return h ^ (h >> 29);
}

/* ---- the index: open addressing, one uint64 per slot ----
 * A slot holds (top 32 bits of the hash) << 32 | (record index + 1); 0 is empty.
 * A key's home slot is the top `bits` bits of its hash, so the index grows
 * without reading the records again. */

typedef struct {
    uint64_t *slot;
    uint64_t mask;
    int shift; /* 64 - bits */
} Index;

static int index_of(Py_buffer *buf, Index *ix) {
    Py_ssize_t n = buf->len / (Py_ssize_t)sizeof(uint64_t);
    if (n < 2 || (n & (n - 1)) || (uint64_t)n > ((uint64_t)1 << 32)) {
        PyErr_SetString(PyExc_ValueError, "index size must be a power of two, at most 2**32");
        return -1;
    }
    int bits = 0;
    while (((Py_ssize_t)1 << bits) < n)
        bits++;
    ix->slot = buf->buf;
    ix->mask = (uint64_t)n - 1;
    ix->shift = 64 - bits;
    return 0;
}

static inline uint64_t home(const Index *ix, uint64_t hash) { return hash >> ix->shift; }

/* ---- packet rows ---- */

typedef struct {
    const int64_t *frame, *ts, *wirelen, *seq;
    /* The packet rows' int32 columns as they are: no widened copy per batch. */
    const int32_t *proto, *sport, *dport, *flags, *itype, *icode, *ireq, *iface, *vlan;
    const uint8_t *encap, *kind, *frag;
    const uint64_t *src_hi, *src_lo, *dst_hi, *dst_lo;
} Rows;

enum { NCOLS = 20 };

/* The query and reply types ICMP flows pair on (decode/transport.py's
 * ICMP_QUERY_REPLY; a test keeps the two equal). */
static int icmp_opens(int64_t proto, int64_t type) {
    if (proto == 1)
        return type == 8 || type == 13 || type == 15 || type == 17;
    return proto == 58 && type == 128;
}

static int icmp_answers(int64_t proto, int64_t type) {
    if (proto == 1)
        return type == 0 || type == 14 || type == 16 || type == 18;
    return proto == 58 && type == 129;
}

typedef struct {
    uint64_t hash, a_hi, a_lo, b_hi, b_lo;
    int64_t a_port, b_port;
    int swap; /* 1: sent by side B */
} Key;

/* records.flow_key: side A is the smaller (address, port). */
static inline void key_of(const Rows *r, Py_ssize_t i, Key *k) {
    uint64_t sh = r->src_hi[i], sl = r->src_lo[i], dh = r->dst_hi[i], dl = r->dst_lo[i];
    int64_t sp = r->sport[i], dp = r->dport[i];
    k->swap = sh > dh || (sh == dh && (sl > dl || (sl == dl && sp > dp)));
    /* A packet to its own sender (a host pinging itself): only an answer's type
     * says it went from side B (records.packet_key). */
    if (sh == dh && sl == dl && sp == dp && r->kind[i] == PACKET &&
        icmp_answers(r->proto[i], r->itype[i]))
        k->swap = 1;
    k->a_hi = k->swap ? dh : sh;
    k->a_lo = k->swap ? dl : sl;
    k->b_hi = k->swap ? sh : dh;
    k->b_lo = k->swap ? sl : dl;
    k->a_port = k->swap ? dp : sp;
    k->b_port = k->swap ? sp : dp;
    uint64_t word = ((uint64_t)r->proto[i] << 48) | ((uint64_t)k->a_port << 32) |
                    ((uint64_t)k->b_port << 16) | (uint64_t)(r->ireq[i] + 1);
    k->hash = mix5(k->a_hi, k->a_lo, k->b_hi, k->b_lo, word);
}

static inline int same_key(const Record *rec, const Key *k, int64_t proto, int64_t ireq) {
    return rec->hash == k->hash && rec->a_hi == k->a_hi && rec->a_lo == k->a_lo &&
           rec->b_hi == k->b_hi && rec->b_lo == k->b_lo && rec->a_port == k->a_port &&
           rec->b_port == k->b_port && rec->proto == proto && rec->icmp_req == ireq;
}

static void start_record(Record *rec, const Key *k, const Rows *r, Py_ssize_t i, int pure_syn,
                         int tentative) {
    memset(rec, 0, sizeof *rec);
    rec->prev = -1;
    rec->hash = k->hash;
    rec->a_hi = k->a_hi;
    rec->a_lo = k->a_lo;
    rec->b_hi = k->b_hi;
    rec->b_lo = k->b_lo;
    rec->a_port = (int32_t)k->a_port;
    rec->b_port = (int32_t)k->b_port;
    rec->proto = (uint8_t)r->proto[i];
    rec->icmp_req = (int16_t)r->ireq[i];
    rec->first_ts = r->ts[i];
    rec->last_ts = r->ts[i];
    rec->isn = -1;
    rec->isn0 = pure_syn ? r->seq[i] : -1;
    rec->syn_start = (uint8_t)pure_syn;
    rec->tentative = (uint8_t)tentative;
    rec->first_dir = rec->open_dir = rec->answer_dir = rec->err_dir = -1;
    rec->err_type = rec->err_code = -1;
    rec->vlan_lo = rec->vlan_hi = -1;
    rec->iface = r->iface[i];
    for (int f = 0; f < FRAMES; f++) {
        rec->frame[f] = -1;
        rec->file[f] = -1;
    }
}

/* One row's share of its record (records.records_from_rows, per row). */
static void add_row(Record *rec, const Rows *r, Py_ssize_t i, int d, int pure_syn, int file_id) {
    int pkt = r->kind[i] == PACKET;
    int64_t proto = r->proto[i];
    int tcp = pkt && proto == 6;
    int64_t flags = tcp ? r->flags[i] : 0;
    int close = tcp && (flags & (FIN | RST));
    int opening = pure_syn, answer = tcp && (flags & (SYN | ACK)) == (SYN | ACK);
    if (pkt && (proto == 1 || proto == 58)) {
        opening = icmp_opens(proto, r->itype[i]);
        answer = icmp_answers(proto, r->itype[i]);
    }
    int64_t ts = r->ts[i];
    if (ts < rec->first_ts)
        rec->first_ts = ts;
    if (ts > rec->last_ts)
        rec->last_ts = ts;
    /* A fragmented datagram is one packet (its first fragment); the rest add bytes. */
    int64_t count = pkt && r->frag[i] != JOINED_FRAGMENT, size = pkt ? r->wirelen[i] : 0;
    if (d) {
        rec->pkts_b += count;
        rec->bytes_b += size;
        rec->flags_b |= (int16_t)flags;
    } else {
        rec->pkts_a += count;
        rec->bytes_a += size;
        rec->flags_a |= (int16_t)flags;
    }
    if (pkt && rec->first_dir < 0)
        rec->first_dir = (int8_t)d;
    if (opening && rec->open_dir < 0)
        rec->open_dir = (int8_t)d;
    if (answer && rec->answer_dir < 0)
        rec->answer_dir = (int8_t)d;
    if (!pkt && rec->err_dir < 0) {
        rec->err_dir = (int8_t)d;
        rec->err_type = (int16_t)r->itype[i];
        rec->err_code = (int16_t)r->icode[i];
    }
    if (pure_syn) {
        rec->has_syn = 1;
        rec->isn = r->seq[i];
        rec->cals = 0;
    }
    if (close)
        rec->cals = 1;
    int32_t vlan = r->vlan[i];
    if (vlan >= 0 && (rec->vlan_lo < 0 || vlan < rec->vlan_lo))
        rec->vlan_lo = (int16_t)vlan;
    if (vlan > rec->vlan_hi)
        rec->vlan_hi = (int16_t)vlan;
    if (r->encap[i] > rec->encap)
        rec->encap = r->encap[i];
    for (int f = 0; f < FRAMES; f++) {
        if (rec->frame[f] < 0) {
            rec->frame[f] = r->frame[i];
            rec->file[f] = file_id;
            break;
        }
    }
}

static int rows_of(Py_buffer *col, Py_ssize_t n, Rows *r) {
    static const int size[NCOLS] = {8, 8, 8, 4, 4, 4, 4, 8, 4, 4, 4, 4, 4, 1, 1, 1, 8, 8, 8, 8};
    for (int c = 0; c < NCOLS; c++) {
        if (col[c].len != n * size[c]) {
            PyErr_Format(PyExc_ValueError, "update: column %d has %zd bytes, not %zd", c,
                         col[c].len, n * size[c]);
            return -1;
        }
    }
    r->frame = col[0].buf;
    r->ts = col[1].buf;
    r->wirelen = col[2].buf;
    r->proto = col[3].buf;
    r->sport = col[4].buf;
    r->dport = col[5].buf;
    r->flags = col[6].buf;
    r->seq = col[7].buf;
    r->itype = col[8].buf;
    r->icode = col[9].buf;
    r->ireq = col[10].buf;
    r->iface = col[11].buf;
    r->vlan = col[12].buf;
    r->encap = col[13].buf;
    r->kind = col[14].buf;
    r->frag = col[15].buf;
    r->src_hi = col[16].buf;
    r->src_lo = col[17].buf;
    r->dst_hi = col[18].buf;
    r->dst_lo = col[19].buf;
    return 0;
}

/* update(store, used, index, entries, limit, file_id, start, *20 columns[, where])
 *   -> (next row, used, entries, collisions, status)
 * Rows from `start` on are added to the records store[:used], through the index
 * (which holds `entries` keys and may hold `limit`). Stops before a row that
 * needs a record past the store's end (STORE_FULL) or a key past `limit`
 * (INDEX_FULL); DONE when every row is in. With `where` (int64, one per row),
 * where[i] is the record row i went to. */
static PyObject *update(PyObject *self, PyObject *args) {
    Py_buffer store, index, col[NCOLS], where_buf;
    Py_ssize_t used, entries, limit, start;
    int file_id;
    memset(col, 0, sizeof col);
    memset(&where_buf, 0, sizeof where_buf);
    PyObject *columns;
    Key *keys = NULL;
    int64_t *where = NULL;
    /* The columns come as one tuple, their buffers taken here: CPython (3.11) sizes
     * PyArg_ParseTuple's list of buffers to release by the top-level arguments
     * only, so buffers in a nested "(y*...)" would be written past its end. */
    if (!PyArg_ParseTuple(args, "w*nw*nninO|w*", &store, &used, &index, &entries, &limit,
                          &file_id, &start, &columns, &where_buf))
        return NULL;
    PyObject *result = NULL;
    if (!PyTuple_Check(columns) || PyTuple_GET_SIZE(columns) != NCOLS) {
        PyErr_Format(PyExc_ValueError, "update: columns must be a tuple of %d arrays", NCOLS);
        goto out;
    }
    for (int c = 0; c < NCOLS; c++)
        if (PyObject_GetBuffer(PyTuple_GET_ITEM(columns, c), &col[c], PyBUF_SIMPLE) < 0)
            goto out;
    Index ix;
    Rows r;
    Py_ssize_t n = col[0].len / 8, cap = store.len / (Py_ssize_t)sizeof(Record);
    Py_ssize_t i = start, collisions = 0;
    int status = DONE;
    if (index_of(&index, &ix) < 0 || rows_of(col, n, &r) < 0)
        goto out;
    if (where_buf.obj) {
        if (where_buf.len != n * 8) {
            PyErr_SetString(PyExc_ValueError, "update: where must hold one int64 per row");
            goto out;
        }
        where = where_buf.buf;
    }
    if (cap > (Py_ssize_t)UINT32_MAX - 1) /* a slot holds a record's index + 1 in 32 bits */
        cap = (Py_ssize_t)UINT32_MAX - 1;
    if (used < 0 || used > cap || start < 0 || start > n || entries < 0 || limit < entries ||
        (uint64_t)limit > ix.mask) {
        PyErr_SetString(PyExc_ValueError, "update: store, index or start out of range");
        goto out;
    }
    Record *rec = store.buf;
    keys = malloc(sizeof(Key) * (size_t)(n - start + 1));
    if (!keys) {
        PyErr_NoMemory();
        goto out;
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t j = start; j < n; j++)
        key_of(&r, j, &keys[j - start]);
    for (; i < n; i++) {
        /* Fetch ahead: the slot of a later row, and the record an earlier-fetched
         * slot points to, so the loads of this row find them in cache. */
        if (i + 2 * AHEAD < n)
            __builtin_prefetch(&ix.slot[home(&ix, keys[i + 2 * AHEAD - start].hash)]);
        if (i + AHEAD < n) {
            uint64_t s = ix.slot[home(&ix, keys[i + AHEAD - start].hash)];
            if (s && (Py_ssize_t)(uint32_t)s <= used) {
                const char *p = (const char *)(rec + (uint32_t)s - 1);
                __builtin_prefetch(p);
                __builtin_prefetch(p + 64);
                __builtin_prefetch(p + 128);
            }
        }
        const Key *k = &keys[i - start];
        int64_t proto = r.proto[i], ireq = r.ireq[i];
        uint64_t at = home(&ix, k->hash), tag = k->hash >> 32;
        Record *found = NULL;
        int passed = 0; /* a key of the same hash was passed: a 64-bit collision */
        for (;;) {
            uint64_t s = ix.slot[at];
            if (!s)
                break;
            if ((s >> 32) == tag) {
                Record *c = rec + (uint32_t)s - 1;
                if (same_key(c, k, proto, ireq)) {
                    found = c;
                    break;
                }
                passed |= c->hash == k->hash;
            }
            at = (at + 1) & ix.mask;
        }
        int pkt = r.kind[i] == PACKET;
        int64_t flags = pkt && proto == 6 ? r.flags[i] : 0;
        int pure_syn = pkt && proto == 6 && (flags & (SYN | ACK)) == SYN;
        Record *target = found;
        int tentative = 0;
        if (found && pure_syn) {
            /* A new connection on the same 5-tuple: after a close, with a new ISN.
             * After a record without SYN (it continues one of an earlier table)
             * the boundary is tentative: that record's SYN decides (table.py). */
            if (!found->has_syn)
                target = NULL, tentative = 1;
            else if (found->cals && found->isn != r.seq[i])
                target = NULL;
        }
        if (!target) {
            if (used >= cap) {
                status = STORE_FULL;
                break;
            }
            if (!found && entries >= limit) {
                status = INDEX_FULL;
                break;
            }
            target = rec + used++;
            start_record(target, k, &r, i, pure_syn, tentative);
            if (found)
                target->prev = found - rec;
            ix.slot[at] = (tag << 32) | (uint64_t)used; /* index + 1 */
            entries += !found;
            collisions += !found && passed;
        }
        add_row(target, &r, i, k->swap, pure_syn, file_id);
        if (where)
            where[i] = target - rec;
    }
    Py_END_ALLOW_THREADS
    result = Py_BuildValue("nnnni", i, used, entries, collisions, status);
out:
    free(keys);
    PyBuffer_Release(&store);
    PyBuffer_Release(&index);
    for (int c = 0; c < NCOLS; c++)
        if (col[c].obj)
            PyBuffer_Release(&col[c]);
    if (where_buf.obj)
        PyBuffer_Release(&where_buf);
    return result;
}

/* find(store, used, index, hashes, out): out[i] = the record the index holds for
 * hashes[i] (the first of that hash), or -1. */
static PyObject *find(PyObject *self, PyObject *args) {
    Py_buffer store, index, hashes, out;
    Py_ssize_t used;
    if (!PyArg_ParseTuple(args, "y*ny*y*w*", &store, &used, &index, &hashes, &out))
        return NULL;
    Index ix;
    PyObject *result = NULL;
    Py_ssize_t n = hashes.len / 8;
    if (index_of(&index, &ix) < 0)
        goto out;
    if (out.len != n * 8 || used < 0 || used > store.len / (Py_ssize_t)sizeof(Record)) {
        PyErr_SetString(PyExc_ValueError, "find: sizes differ");
        goto out;
    }
    const Record *rec = store.buf;
    const uint64_t *h = hashes.buf;
    int64_t *o = out.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        uint64_t at = home(&ix, h[i]);
        o[i] = -1;
        for (uint64_t s; (s = ix.slot[at]); at = (at + 1) & ix.mask) {
            Py_ssize_t idx = (Py_ssize_t)(uint32_t)s - 1;
            if ((s >> 32) == h[i] >> 32 && idx < used && rec[idx].hash == h[i]) {
                o[i] = idx;
                break;
            }
        }
    }
    result = Py_BuildValue("");
out:
    PyBuffer_Release(&store);
    PyBuffer_Release(&index);
    PyBuffer_Release(&hashes);
    PyBuffer_Release(&out);
    return result;
}

/* Empty slot `at` and move later entries of its run back into the hole, so that
 * every entry stays reachable from its home slot without tombstones. */
static void delete_at(const Index *ix, uint64_t at) {
    uint64_t j = at;
    ix->slot[at] = 0;
    for (;;) {
        j = (j + 1) & ix->mask;
        uint64_t s = ix->slot[j];
        if (!s)
            return;
        uint64_t h = (s >> 32) >> (ix->shift - 32); /* the entry's home slot */
        /* It may fill the hole unless its home lies cyclically in (at, j]. */
        int inside = at < j ? (h > at && h <= j) : (h > at || h <= j);
        if (!inside) {
            ix->slot[at] = s;
            ix->slot[j] = 0;
            at = j;
        }
    }
}

/* put(store, used, index, records) -> keys added: the index points each record's
 * key (by hash: the first key of that hash) at that record. The caller keeps
 * the index below its limit.
 * remove(store, used, index, records) -> keys removed: each record's key leaves
 * the index, if the index points it at that record (its key's latest). */
static PyObject *index_records(PyObject *args, int removing) {
    const char *what = removing ? "remove" : "put";
    Py_buffer store, index, records;
    Py_ssize_t used;
    if (!PyArg_ParseTuple(args, "y*nw*y*", &store, &used, &index, &records))
        return NULL;
    Index ix;
    PyObject *result = NULL;
    Py_ssize_t n = records.len / 8, changed = 0;
    if (index_of(&index, &ix) < 0)
        goto out;
    if (used < 0 || used > store.len / (Py_ssize_t)sizeof(Record)) {
        PyErr_Format(PyExc_ValueError, "%s: store out of range", what);
        goto out;
    }
    const Record *rec = store.buf;
    const int64_t *r = records.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (r[i] < 0 || r[i] >= used || r[i] >= UINT32_MAX) {
            PyErr_Format(PyExc_ValueError, "%s: record out of range", what);
            goto out;
        }
        uint64_t h = rec[r[i]].hash, at = home(&ix, h), want = (uint64_t)(r[i] + 1);
        if (removing) {
            for (uint64_t s; (s = ix.slot[at]); at = (at + 1) & ix.mask) {
                if ((s >> 32) == h >> 32 && (uint32_t)s == want) {
                    delete_at(&ix, at);
                    changed++;
                    break;
                }
            }
            continue;
        }
        for (uint64_t s; (s = ix.slot[at]); at = (at + 1) & ix.mask) {
            Py_ssize_t idx = (Py_ssize_t)(uint32_t)s - 1;
            if ((s >> 32) == h >> 32 && idx < used && rec[idx].hash == h)
                break;
        }
        changed += !ix.slot[at];
        ix.slot[at] = ((h >> 32) << 32) | want;
    }
    result = PyLong_FromSsize_t(changed);
out:
    PyBuffer_Release(&store);
    PyBuffer_Release(&index);
    PyBuffer_Release(&records);
    return result;
}

static PyObject *put(PyObject *self, PyObject *args) { return index_records(args, 0); }

static PyObject *remove_(PyObject *self, PyObject *args) { return index_records(args, 1); }

/* regrow(old, new): every entry of the old index into the (larger, empty) new one. */
static PyObject *regrow(PyObject *self, PyObject *args) {
    Py_buffer old, new;
    if (!PyArg_ParseTuple(args, "y*w*", &old, &new))
        return NULL;
    Index a, b;
    PyObject *result = NULL;
    if (index_of(&old, &a) < 0 || index_of(&new, &b) < 0)
        goto out;
    if (b.mask < a.mask) {
        PyErr_SetString(PyExc_ValueError, "regrow: the new index is smaller");
        goto out;
    }
    for (uint64_t j = 0; j <= a.mask; j++) {
        uint64_t s = a.slot[j];
        if (!s)
            continue;
        /* The home slot from the tag: the top bits of the hash are the tag's. */
        uint64_t at = (s >> 32) >> (b.shift - 32);
        while (b.slot[at])
            at = (at + 1) & b.mask;
        b.slot[at] = s;
    }
    result = Py_BuildValue("");
out:
    PyBuffer_Release(&old);
    PyBuffer_Release(&new);
    return result;
}

/* entries(index, out) -> n: the record indices the index holds, into out[:n]. */
static PyObject *entries(PyObject *self, PyObject *args) {
    Py_buffer index, out;
    if (!PyArg_ParseTuple(args, "y*w*", &index, &out))
        return NULL;
    Index ix;
    PyObject *result = NULL;
    Py_ssize_t n = 0, cap = out.len / 8;
    if (index_of(&index, &ix) < 0)
        goto out;
    int64_t *o = out.buf;
    for (uint64_t j = 0; j <= ix.mask; j++) {
        if (!ix.slot[j])
            continue;
        if (n >= cap) {
            PyErr_SetString(PyExc_ValueError, "entries: out is too small");
            goto out;
        }
        o[n++] = (int64_t)(uint32_t)ix.slot[j] - 1;
    }
    result = PyLong_FromSsize_t(n);
out:
    PyBuffer_Release(&index);
    PyBuffer_Release(&out);
    return result;
}

/* layout() -> ((name, offset, size), ...), of Record: a test compares it with
 * the numpy dtype of flows/store.py. */
static PyObject *layout(PyObject *self, PyObject *noargs) {
#define F(name, member) name, (Py_ssize_t)offsetof(Record, member), (Py_ssize_t)sizeof(((Record *)0)->member)
    return Py_BuildValue(
        "((snn)(snn)(snn)(snn)(snn)(snn)(snn)(snn)(snn)(snn)(snn)(snn)(snn)(snn)(snn)(snn)"
        "(snn)(snn)(snn)(snn)(snn)(snn)(snn)(snn)(snn)(snn)(snn)(snn)(snn)(snn)(snn)(snn)"
        "(snn)(snn)(snn)(snn)(snn)(snn)(snn)(snn))n",
        F("hash", hash), F("a_hi", a_hi), F("a_lo", a_lo), F("b_hi", b_hi), F("b_lo", b_lo),
        F("first_ts", first_ts), F("last_ts", last_ts), F("pkts_a", pkts_a), F("pkts_b", pkts_b),
        F("bytes_a", bytes_a), F("bytes_b", bytes_b), F("isn", isn), F("isn0", isn0),
        F("frame0", frame[0]), F("frame1", frame[1]), F("frame2", frame[2]), F("a_port", a_port),
        F("b_port", b_port), F("iface", iface), F("file0", file[0]), F("file1", file[1]),
        F("file2", file[2]), F("icmp_req", icmp_req), F("flags_a", flags_a),
        F("flags_b", flags_b), F("err_type", err_type), F("err_code", err_code),
        F("vlan_lo", vlan_lo), F("vlan_hi", vlan_hi), F("proto", proto), F("encap", encap),
        F("first_dir", first_dir), F("open_dir", open_dir), F("answer_dir", answer_dir),
        F("err_dir", err_dir), F("syn_start", syn_start), F("has_syn", has_syn), F("cals", cals),
        F("tentative", tentative), F("prev", prev),
        (Py_ssize_t)sizeof(Record));
#undef F
}

static PyMethodDef methods[] = {
    {"update", update, METH_VARARGS, "Add packet rows to the flow records."},
    {"find", find, METH_VARARGS, "The record the index holds for each hash."},
    {"put", put, METH_VARARGS, "Point the index at records."},
    {"remove", remove_, METH_VARARGS, "Take keys out of an index."},
    {"regrow", regrow, METH_VARARGS, "Copy an index into a larger one."},
    {"entries", entries, METH_VARARGS, "The records an index holds."},
    {"layout", layout, METH_NOARGS, "The record struct's fields: (name, offset, size)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_table",
                                    "The flow table's group-by.", -1, methods};

PyMODINIT_FUNC PyInit__table(void) { return PyModule_Create(&module); }
