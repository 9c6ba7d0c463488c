/* Record walks for capture files: the one per-packet loop of the reader, in C.
 *
 * Each function walks the records of a buffer and writes where they start into
 * a caller-supplied int64 array (any object with the buffer protocol). It stops
 * at the first incomplete record, a corrupt length, or a full output array, and
 * returns what it found; the Python side does everything else with numpy.
 * Pure-Python versions of both walks live beside it (portmatrix.sources.walk) and
 * are used when this module was not built.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

enum { PREFETCH = 4096 }; /* bytes fetched ahead of a walk */

static uint32_t rd32(const unsigned char *p, int little) {
    if (little)
        return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
               ((uint32_t)p[3] << 24);
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) |
           (uint32_t)p[3];
}

/* pcap_walk(buf, out, little, limit) -> (count, end_offset, corrupt_length or -1)
 * `out` holds 5 int64 per record: start, seconds, fraction, captured and wire
 * length, read while the header is in cache. */
static PyObject *pcap_walk(PyObject *self, PyObject *args) {
    Py_buffer buf, out;
    int little;
    unsigned long long limit;
    if (!PyArg_ParseTuple(args, "y*w*pK", &buf, &out, &little, &limit))
        return NULL;
    const unsigned char *data = buf.buf;
    Py_ssize_t n = buf.len, off = 0, count = 0;
    Py_ssize_t cap = out.len / (Py_ssize_t)(5 * sizeof(int64_t));
    int64_t *rec = out.buf;
    long long corrupt = -1;
    Py_ssize_t ahead = 0; /* prefetched up to here */
    Py_BEGIN_ALLOW_THREADS
    while (off + 16 <= n && count < cap) {
        /* Each record's length says where the next starts: a chain of loads the
         * CPU cannot run ahead of, so fetch the bytes ahead, line by line. */
        for (; ahead < off + PREFETCH && ahead < n; ahead += 64)
            __builtin_prefetch(data + ahead);
        const unsigned char *h = data + off;
        uint32_t incl = rd32(h + 8, little);
        if ((unsigned long long)incl > limit) {
            corrupt = incl;
            break;
        }
        Py_ssize_t end = off + 16 + (Py_ssize_t)incl;
        if (end > n)
            break;
        int64_t *r = rec + 5 * count++;
        r[0] = off;
        r[1] = rd32(h, little);
        r[2] = rd32(h + 4, little);
        r[3] = incl;
        r[4] = rd32(h + 12, little);
        off = end;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&buf);
    PyBuffer_Release(&out);
    return Py_BuildValue("nnL", count, off, corrupt);
}

/* pcapng_walk(buf, out, little, max_block) -> (count, end_offset, stop_reason)
 * Records packet blocks (EPB 6, SPB 3, OPB 2), 8 int64 each in `out`: start,
 * type, length, and the five 32-bit words at offsets 8 to 24 (interface,
 * timestamp, lengths; 0 past the end of the buffer), read while the block's
 * header is in cache. Stops *before* any other block
 * type it must interpret (section header, interface description, statistics), so
 * the caller handles those. Unknown block types are skipped. stop_reason: 0 need
 * more data or out of room, 1 control block at end_offset, 2 corrupt length,
 * 3 trailing length mismatch. */
static PyObject *pcapng_walk(PyObject *self, PyObject *args) {
    Py_buffer buf, out;
    int little;
    unsigned long long max_block;
    if (!PyArg_ParseTuple(args, "y*w*pK", &buf, &out, &little, &max_block))
        return NULL;
    const unsigned char *data = buf.buf;
    Py_ssize_t n = buf.len, off = 0, count = 0;
    Py_ssize_t cap = out.len / (Py_ssize_t)(8 * sizeof(int64_t));
    int64_t *rec = out.buf;
    int reason = 0;
    Py_ssize_t ahead = 0;
    Py_BEGIN_ALLOW_THREADS
    while (off + 12 <= n && count < cap) {
        for (; ahead < off + PREFETCH && ahead < n; ahead += 64)
            __builtin_prefetch(data + ahead);
        uint32_t btype = rd32(data + off, little);
        uint32_t blen = rd32(data + off + 4, little);
        if (btype == 0x0A0D0D0A || btype == 1 || btype == 5) {
            reason = 1;
            break;
        }
        if (blen < 12 || (blen & 3) || (unsigned long long)blen > max_block) {
            reason = 2;
            break;
        }
        Py_ssize_t end = off + (Py_ssize_t)blen;
        if (end > n)
            break;
        if (rd32(data + end - 4, little) != blen) {
            reason = 3;
            break;
        }
        if (btype == 6 || btype == 3 || btype == 2) {
            int64_t *r = rec + 8 * count++;
            r[0] = off;
            r[1] = btype;
            r[2] = blen;
            for (int w = 0; w < 5; w++) {
                Py_ssize_t at = off + 8 + 4 * w;
                r[3 + w] = at + 4 <= n ? rd32(data + at, little) : 0;
            }
        }
        off = end;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&buf);
    PyBuffer_Release(&out);
    return Py_BuildValue("nni", count, off, reason);
}

static PyMethodDef methods[] = {
    {"pcap_walk", pcap_walk, METH_VARARGS, "Walk classic pcap records."},
    {"pcapng_walk", pcapng_walk, METH_VARARGS, "Walk pcapng packet blocks."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_walk",
                                    "Record walks for capture files.", -1, methods};

PyMODINIT_FUNC PyInit__walk(void) { return PyModule_Create(&module); }
