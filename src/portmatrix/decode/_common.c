/* The common frames in one pass: the decoder's fast path.
 *
 * Most frames of a real capture are Ethernet (or Linux cooked, or raw IP),
 * at most a few VLAN tags, IPv4 without fragmentation or IPv6 without extension
 * headers, then TCP with its flags or UDP that is not a tunnel. The numpy
 * decoder (portmatrix.decode) reads each field of such frames in a separate
 * gather over the whole batch, which misses the cache once per field; this loop
 * reads each header once while it is in cache.
 *
 * It decodes exactly those frames and leaves every other one (anything damaged,
 * cut short, fragmented, tunnelled, ICMP errors, MPLS, PPPoE, the other layers of
 * decode/ethertype.py's table, LLC/SNAP, other link types, ...)
 * to the numpy decoder, which is also the reference: the tests check that the
 * two give identical rows. When in doubt, a frame is left to numpy.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

enum { COLS = 18, AHEAD = 16 };
/* Columns of a row: frame index, vlan, src hi/lo, dst hi/lo, proto, sport, dport,
 * tcp flags, tcp seq, icmp type, code and the query type an ICMP flow pairs on;
 * then where the application payload is (`located`, see payload_at). */
enum { ROW = 1, NON_IP = 2 }; /* what became of a frame; 0: left to numpy */

static inline uint64_t be(const unsigned char *p, int size) {
    uint64_t v = 0;
    for (int k = 0; k < size; k++)
        v = (v << 8) | p[k];
    return v;
}

static inline int is_vlan(int64_t etype) {
    return etype == 0x8100 || etype == 0x88A8 || etype == 0x9100 || etype == 0x9200;
}

/* The other layers of decode/ethertype.py's LAYERS: MPLS, PPPoE session, VN-Tag,
 * E-tag, PBB, MACsec, bridged Ethernet. Frames reaching them are left to numpy
 * (a test keeps this list equal to the table). */
static const int64_t LAYERS[] = {0x8847, 0x8848, 0x8864, 0x8926, 0x893F, 0x88E7, 0x88E5, 0x6558};

static inline int is_layer(int64_t etype) {
    for (size_t k = 0; k < sizeof(LAYERS) / sizeof(LAYERS[0]); k++)
        if (etype == LAYERS[k])
            return 1;
    return 0;
}

/* The query type an ICMP type pairs on (echo: 8 for request and reply), or -1;
 * and whether the type is an error quoting another packet. */
static int icmp_query(int64_t proto, int64_t type) {
    if (proto == 1) {
        if (type == 8 || type == 0) return 8;
        if (type == 13 || type == 14) return 13;
        if (type == 15 || type == 16) return 15;
        if (type == 17 || type == 18) return 17;
    } else if (type == 128 || type == 129) {
        return 128;
    }
    return -1;
}

static int icmp_error(int64_t proto, int64_t type) {
    if (proto == 1)
        return type == 3 || type == 4 || type == 5 || type == 11 || type == 12;
    return type >= 1 && type <= 4;
}

/* Decode one frame: ROW (and the row in `r`, where its transport header starts
 * and where the IP payload ends in `at`), NON_IP (and its ethertype in
 * `*etype_out`), or 0 to leave it to numpy. */
static int frame(const unsigned char *d, int64_t pos, int64_t end, int32_t linktype, int64_t *r,
                 int64_t *etype_out, int64_t *at) {
    int64_t etype;
    int64_t vlan = -1;
    if (linktype == 1) { /* Ethernet */
        if (pos + 14 > end)
            return 0;
        etype = (int64_t)be(d + pos + 12, 2);
        pos += 14;
        if (etype < 0x0600) { /* an 802.3 length: LLC follows; SNAP may carry IP */
            if (pos + 3 <= end && d[pos] == 0xAA && d[pos + 1] == 0xAA && d[pos + 2] == 0x03)
                return 0;
            etype = -1;
        }
    } else if (linktype == 113 || linktype == 276) { /* Linux cooked v1, v2 */
        int hdr = linktype == 113 ? 16 : 20;
        if (pos + hdr > end)
            return 0;
        etype = (int64_t)be(d + pos + (linktype == 113 ? 14 : 0), 2);
        pos += hdr;
    } else if (linktype == 101 || linktype == 12 || linktype == 14 || linktype == 228 ||
               linktype == 229) { /* raw IP: the version says which */
        if (pos + 1 > end)
            return 0;
        int version = d[pos] >> 4;
        if (version != 4 && version != 6)
            return 0;
        etype = version == 4 ? 0x0800 : 0x86DD;
    } else {
        return 0;
    }
    for (int tags = 0; is_vlan(etype); tags++) {
        if (tags == 4 || pos + 4 > end)
            return 0;
        if (vlan < 0)
            vlan = (int64_t)(be(d + pos, 2) & 0x0FFF);
        etype = (int64_t)be(d + pos + 2, 2);
        pos += 4;
    }
    if (is_layer(etype))
        return 0;
    uint64_t src_hi, src_lo, dst_hi, dst_lo;
    int64_t proto, l4pos, l4end;
    if (etype == 0x0800) {
        if (pos + 20 > end || (d[pos] >> 4) != 4)
            return 0;
        int64_t ihl = (int64_t)(d[pos] & 0x0F) * 4;
        if (ihl < 20 || pos + ihl > end)
            return 0;
        if (be(d + pos + 6, 2) & 0x3FFF) /* more fragments, or a fragment offset */
            return 0;
        int64_t total = (int64_t)be(d + pos + 2, 2);
        proto = d[pos + 9];
        src_hi = dst_hi = 0;
        src_lo = be(d + pos + 12, 4) | 0xFFFF00000000ULL;
        dst_lo = be(d + pos + 16, 4) | 0xFFFF00000000ULL;
        l4pos = pos + ihl;
        /* A zero total length happens with segmentation offload: trust the capture. */
        l4end = total >= ihl && pos + total < end ? pos + total : end;
    } else if (etype == 0x86DD) {
        if (pos + 40 > end || (d[pos] >> 4) != 6)
            return 0;
        int64_t payload = (int64_t)be(d + pos + 4, 2);
        proto = d[pos + 6]; /* extension headers are left to numpy */
        src_hi = be(d + pos + 8, 8);
        src_lo = be(d + pos + 16, 8);
        dst_hi = be(d + pos + 24, 8);
        dst_lo = be(d + pos + 32, 8);
        l4pos = pos + 40;
        l4end = payload > 0 && pos + 40 + payload < end ? pos + 40 + payload : end;
    } else {
        *etype_out = etype;
        return NON_IP;
    }
    int64_t sport, dport, flags = 0, seq = -1, type = -1, code = -1, query = -1;
    if (proto == 6 || proto == 17) { /* TCP with its flags; UDP that is not a tunnel */
        if (l4pos + (proto == 6 ? 14 : 4) > l4end)
            return 0;
        sport = (int64_t)be(d + l4pos, 2);
        dport = (int64_t)be(d + l4pos + 2, 2);
        if (proto == 17 && (dport == 4789 || dport == 6081 || dport == 3544 || sport == 3544))
            return 0; /* VXLAN, Geneve, Teredo: tunnels */
        if (proto == 6) {
            flags = d[l4pos + 13];
            if (flags & 0x02)
                seq = (int64_t)be(d + l4pos + 4, 4);
        }
    } else if (proto == 1 || proto == 58) { /* ICMP that is not an error */
        if (l4pos + 2 > l4end)
            return 0;
        type = d[l4pos];
        code = d[l4pos + 1];
        if (icmp_error(proto, type))
            return 0;
        query = icmp_query(proto, type);
        /* Queries and replies pair on the identifier; other types get a flow each. */
        sport = query >= 0 && l4pos + 6 <= l4end ? (int64_t)be(d + l4pos + 4, 2) : 0;
        dport = sport;
        if (query < 0)
            query = type;
    } else {
        return 0;
    }
    at[0] = l4pos;
    at[1] = l4end;
    r[1] = vlan;
    r[2] = (int64_t)src_hi;
    r[3] = (int64_t)src_lo;
    r[4] = (int64_t)dst_hi;
    r[5] = (int64_t)dst_lo;
    r[6] = proto;
    r[7] = sport;
    r[8] = dport;
    r[9] = flags;
    r[10] = seq;
    r[11] = type;
    r[12] = code;
    r[13] = query;
    return ROW;
}

/* Where a TCP or UDP row's application payload is, while its headers are in
 * cache: the transport header's position, the payload's start and stop, and its
 * first 8 bytes as one big-endian integer, zero-padded past its end (what
 * decode/payload.py computes with numpy, the reference); -1 and zeros for other
 * protocols. `at` is frame()'s: l4pos and the end of the IP payload, with 14
 * bytes of a TCP header (4 of UDP) known to be there. */
static void payload_at(const unsigned char *d, int64_t proto, const int64_t *at, int64_t *loc) {
    int64_t l4 = at[0], stop = at[1], start;
    if (proto == 6) {
        int64_t words = d[l4 + 12] >> 4;
        start = l4 + 4 * words;
        if (words < 5 || start > stop)
            start = stop;
    } else if (proto == 17) {
        start = l4 + 8 > stop ? stop : l4 + 8;
    } else {
        loc[0] = -1;
        loc[1] = loc[2] = loc[3] = 0;
        return;
    }
    uint64_t head = 0;
    for (int k = 0; k < 8; k++)
        head = (head << 8) | (start + k < stop ? d[start + k] : 0);
    loc[0] = l4;
    loc[1] = start;
    loc[2] = stop;
    loc[3] = (int64_t)head;
}

/* common(data, offset, caplen, linktype, out, fate, etype) -> rows
 * offset, caplen int64 and linktype int32, one per frame; out is int64 of shape
 * (COLS, frames), fate int8 and etype int64 one per frame. The common frames'
 * rows are written to out[:, :rows], column 0 holding the frame's index in the
 * batch; fate says what became of each frame, etype the ethertype of non-IP ones. */
static PyObject *common(PyObject *self, PyObject *args) {
    Py_buffer data, offset, caplen, linktype, out, fate, etype;
    if (!PyArg_ParseTuple(args, "y*y*y*y*w*w*w*", &data, &offset, &caplen, &linktype, &out, &fate,
                          &etype))
        return NULL;
    Py_ssize_t n = offset.len / (Py_ssize_t)sizeof(int64_t);
    Py_ssize_t rows = -1;
    if (caplen.len / (Py_ssize_t)sizeof(int64_t) != n ||
        linktype.len / (Py_ssize_t)sizeof(int32_t) != n ||
        out.len / (Py_ssize_t)sizeof(int64_t) < COLS * n || fate.len < n ||
        etype.len / (Py_ssize_t)sizeof(int64_t) < n) {
        PyErr_SetString(PyExc_ValueError, "common: columns of different lengths");
    } else {
        const unsigned char *d = data.buf;
        const int64_t *off = offset.buf, *cap = caplen.buf;
        const int32_t *lt = linktype.buf;
        int64_t *o = out.buf, *et = etype.buf, r[COLS], at[2];
        int8_t *fa = fate.buf;
        Py_ssize_t len = data.len;
        rows = 0;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < n; i++) {
            if (i + AHEAD < n && off[i + AHEAD] >= 0 && off[i + AHEAD] < len - 64) {
                /* Headers are scattered through the chunk: fetch the next ones early. */
                __builtin_prefetch(d + off[i + AHEAD]);
                __builtin_prefetch(d + off[i + AHEAD] + 64);
            }
            int64_t start = off[i];
            fa[i] = 0;
            if (start < 0 || start > len || cap[i] < 0 || cap[i] > len - start)
                continue; /* (not `start + cap > len`: that could overflow) */
            int64_t end = start + cap[i];
            fa[i] = (int8_t)frame(d, start, end, lt[i], r, et + i, at);
            if (fa[i] == ROW) {
                r[0] = i;
                payload_at(d, r[6], at, r + 14);
                for (int c = 0; c < COLS; c++)
                    o[c * n + rows] = r[c];
                rows++;
            }
        }
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&data);
    PyBuffer_Release(&offset);
    PyBuffer_Release(&caplen);
    PyBuffer_Release(&linktype);
    PyBuffer_Release(&out);
    PyBuffer_Release(&fate);
    PyBuffer_Release(&etype);
    return rows < 0 ? NULL : PyLong_FromSsize_t(rows);
}

static PyMethodDef methods[] = {
    {"common", common, METH_VARARGS, "Decode the common frames of a batch."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_common",
                                    "The decoder's fast path for common frames.", -1, methods};

PyMODINIT_FUNC PyInit__common(void) { return PyModule_Create(&module); }
