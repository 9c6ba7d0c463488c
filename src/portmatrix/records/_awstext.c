/* AWS VPC flow-log text (space-separated, one record a line, `-` for absent
 * values) into columns, in C: only the fields portmatrix uses are converted;
 * the others are stepped over without being looked at.
 *
 * The caller (records/awstext.py) gives the decompressed text, a role per
 * header field (which column it fills, or -1), the offset and line number to
 * start at, and an int64 output of shape (COLS, cap): column-major, one
 * column per output, `cap` rows. One call fills at most `cap` rows and says
 * where it stopped, so a large file is read in bounded chunks.
 *
 * What a row holds (see awstext.py, which turns it into the reader's columns):
 *   0..7   numbers (srcport dstport protocol packets bytes start end tcp-flags)
 *   8..11  IPv4 addresses (srcaddr dstaddr pkt-srcaddr pkt-dstaddr)
 *   12..15 where an address that is no dotted quad is (offset << 16 | length)
 *   16     64-bit hash of interface-id (0: absent)
 *   17     line number, 18 offset of the line's first byte
 *   19     bits: per number 2 bits (0 absent, 1 given, 2 malformed) at 2k;
 *          per address 2 bits (0 absent, 1 IPv4, 2 other text) at 16 + 2j;
 *          24 action is REJECT; 25..26 log-status (0 OK, 1 NODATA,
 *          2 SKIPDATA, 3 anything else); 27 the line has as many fields as
 *          the header names.
 * Blank lines (after a CR before the LF is dropped) are no rows.
 *
 * Bounds: every read is of a byte before `end` (the buffer's length); every
 * write is to a row below `cap` of an output whose size was checked to hold
 * COLS * cap int64; the roles array is read below its own length only.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

enum { NUMS = 8, ADDRS = 4, COLS = 20 };
enum { C_V4 = 8, C_TEXT = 12, C_ENI = 16, C_LINE = 17, C_OFF = 18, C_BITS = 19 };
enum { R_ENI = 12, R_ACTION = 13, R_STATUS = 14, ROLES = 15 };
enum { ABSENT = 0, GIVEN = 1, OTHER = 2 };
enum { ST_OK = 0, ST_NODATA = 1, ST_SKIPDATA = 2, ST_ELSE = 3 };

static inline int absent(const char *p, Py_ssize_t len) { return len == 1 && p[0] == '-'; }

/* `^-?[0-9]{1,18}$`, as the reference reader's check of a number. */
static inline int number(const char *p, Py_ssize_t len, int64_t *out) {
    if (absent(p, len)) return ABSENT;
    Py_ssize_t i = (len > 0 && p[0] == '-');
    Py_ssize_t digits = len - i;
    if (digits < 1 || digits > 18) return OTHER;
    int64_t v = 0;
    for (; i < len; i++) {
        unsigned d = (unsigned char)p[i] - '0';
        if (d > 9) return OTHER;
        v = v * 10 + d;
    }
    *out = p[0] == '-' ? -v : v;
    return GIVEN;
}

/* A dotted quad without leading zeros (arrow.py's _QUAD); anything else is text
 * for Python to judge (IPv6, or not an address). */
static inline int quad(const char *p, Py_ssize_t len, uint32_t *out) {
    if (absent(p, len)) return ABSENT;
    uint32_t v = 0;
    Py_ssize_t i = 0;
    for (int part = 0; part < 4; part++) {
        if (part) {
            if (i >= len || p[i] != '.') return OTHER;
            i++;
        }
        Py_ssize_t s = i;
        unsigned octet = 0;
        while (i < len && i - s < 3 && p[i] >= '0' && p[i] <= '9') octet = octet * 10 + (p[i++] - '0');
        Py_ssize_t nd = i - s;
        if (nd == 0 || octet > 255 || (nd > 1 && p[s] == '0')) return OTHER;
        v = (v << 8) | octet;
    }
    if (i != len) return OTHER;
    *out = v;
    return GIVEN;
}

/* interface-id's hash, eight bytes at a time (awstext.eni_hash is its twin):
 * a byte-wise hash's chain of multiplies cost more than the parse of a field. */
static inline uint64_t word_hash(const char *p, Py_ssize_t len) {
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ (uint64_t)len, w;
    Py_ssize_t i = 0;
    for (; i + 8 <= len; i += 8) {
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0xBF58476D1CE4E5B9ULL;
        h ^= h >> 31;
    }
    w = 0;
    memcpy(&w, p + i, (size_t)(len - i));
    h = (h ^ w) * 0x94D049BB133111EBULL;
    return h ^ (h >> 29);
}

/* The first space in [s, le), or le: sixteen bytes at a time where SSE2 is. */
static inline const char *next_space(const char *s, const char *le) {
#ifdef __SSE2__
    const __m128i spaces = _mm_set1_epi8(' ');
    while (le - s >= 16) {
        int m = _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)s), spaces));
        if (m) return s + __builtin_ctz((unsigned)m);
        s += 16;
    }
#endif
    while (s < le && *s != ' ') s++;
    return s;
}

static inline int same_word(const char *p, Py_ssize_t len, const char *upper) {
    Py_ssize_t n = (Py_ssize_t)strlen(upper);
    if (len != n) return 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        char c = p[i];
        if (c >= 'a' && c <= 'z') c -= 32;
        if (c != upper[i]) return 0;
    }
    return 1;
}

static inline int status(const char *p, Py_ssize_t len) {
    if (same_word(p, len, "OK")) return ST_OK;
    if (same_word(p, len, "NODATA")) return ST_NODATA;
    if (same_word(p, len, "SKIPDATA")) return ST_SKIPDATA;
    return ST_ELSE;
}

static PyObject *parse(PyObject *self, PyObject *args) {
    Py_buffer text, roles, out;
    Py_ssize_t start, line, cap;
    if (!PyArg_ParseTuple(args, "y*y*nnw*n", &text, &roles, &start, &line, &out, &cap)) return NULL;
    PyObject *result = NULL;
    if (cap < 0 || out.len / (Py_ssize_t)sizeof(int64_t) / COLS < cap) {
        PyErr_SetString(PyExc_ValueError, "output too small for cap rows");
        goto done;
    }
    if (start < 0 || start > text.len) {
        PyErr_SetString(PyExc_ValueError, "start outside the text");
        goto done;
    }
    const char *buf = text.buf, *end = buf + text.len, *p = buf + start;
    const int8_t *role = roles.buf;
    Py_ssize_t nfields = roles.len;
    for (Py_ssize_t f = 0; f < nfields; f++) {
        if (role[f] >= ROLES) {
            PyErr_SetString(PyExc_ValueError, "unknown role");
            goto done;
        }
    }
    int64_t *o = out.buf;
    Py_ssize_t row = 0;
    Py_BEGIN_ALLOW_THREADS;
    while (p < end && row < cap) {
        line++;
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end, *next = nl ? nl + 1 : end;
        if (le > p && le[-1] == '\r') le--;
        if (le == p) {
            p = next;
            continue;
        }
        uint64_t bits = (uint64_t)ST_ELSE << 25;
        int64_t *r = o + row; /* column c of this row: r[c * cap] */
        r[C_ENI * cap] = 0;
        Py_ssize_t f = 0;
        const char *s = p;
        for (;;) {
            const char *e = next_space(s, le);
            int k = f < nfields ? role[f] : -1;
            Py_ssize_t len = e - s;
            if (k >= 0 && k < NUMS) {
                int64_t v = 0;
                int st = number(s, len, &v);
                r[k * cap] = v;
                bits |= (uint64_t)st << (2 * k);
            } else if (k >= NUMS && k < NUMS + ADDRS) {
                uint32_t v = 0;
                int j = k - NUMS;
                int st = quad(s, len, &v);
                r[(C_V4 + j) * cap] = v;
                r[(C_TEXT + j) * cap] = ((int64_t)(s - buf) << 16) | (len < 0xFFFF ? len : 0xFFFF);
                bits |= (uint64_t)st << (16 + 2 * j);
            } else if (k == R_ENI) {
                r[C_ENI * cap] = absent(s, len) ? 0 : (int64_t)word_hash(s, len);
            } else if (k == R_ACTION) {
                bits |= (uint64_t)same_word(s, len, "REJECT") << 24;
            } else if (k == R_STATUS) {
                bits = (bits & ~((uint64_t)3 << 25)) | ((uint64_t)status(s, len) << 25);
            }
            f++;
            if (e >= le) break;
            s = e + 1;
        }
        bits |= (uint64_t)(f == nfields) << 27;
        r[C_LINE * cap] = line;
        r[C_OFF * cap] = p - buf;
        r[C_BITS * cap] = (int64_t)bits;
        row++;
        p = next;
    }
    Py_END_ALLOW_THREADS;
    result = Py_BuildValue("nnn", row, (Py_ssize_t)(p - buf), line);
done:
    PyBuffer_Release(&text);
    PyBuffer_Release(&roles);
    PyBuffer_Release(&out);
    return result;
}

static PyObject *eni_hash(PyObject *self, PyObject *args) {
    Py_buffer text;
    if (!PyArg_ParseTuple(args, "y*", &text)) return NULL;
    uint64_t h = word_hash(text.buf, text.len);
    PyBuffer_Release(&text);
    return PyLong_FromUnsignedLongLong(h);
}

static PyMethodDef methods[] = {
    {"parse", parse, METH_VARARGS, "AWS flow-log text lines into int64 columns."},
    {"eni_hash", eni_hash, METH_VARARGS, "The hash the parser gives interface-id."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_awstext",
                                    "AWS VPC flow-log text into columns.", -1, methods};

PyMODINIT_FUNC PyInit__awstext(void) { return PyModule_Create(&module); }
