/*
 * fuzz_compat_json - the doublecrypt-core compatibility listing
 * (fs_list_root / fs_list_dir in include/doublecrypt_core.h) with names the
 * fuzzer chooses: arbitrary bytes, invalid UTF-8, quotes, backslashes,
 * control characters.
 *
 * Input: NUL-separated pieces (at most MAX_PIECES); a piece's first byte
 * picks the call (mod 4: file at the root, directory at the root, file in
 * the last directory made, directory in it) and the rest is the name (a '/'
 * in it makes a path, as the seed's rules allow).
 *
 * Every listing must be valid JSON (RFC 8259: checked by a strict validator
 * here, UTF-8 included) of the documented shape, in strictly increasing
 * bytewise name order; every listed name must decode to a name whose
 * fs_stat gives the listed kind and inode; every name created at the root
 * must be listed there.
 */
#include <inttypes.h>

#include "doublecrypt_core.h"
#include "fuzz_common.h"

#define MAX_PIECES 24
#define MAX_DEPTH 64
#define PATH_BUF (DC_MAX_PATH_BYTES + 1)

/* ---- a strict JSON validator ---- */

typedef struct json {
    const unsigned char *s;
    size_t i, n;
} json;

static void ws(json *j) {
    while (j->i < j->n && (j->s[j->i] == ' ' || j->s[j->i] == '\t' ||
                           j->s[j->i] == '\n' || j->s[j->i] == '\r'))
        j->i++;
}

static int eat(json *j, char c) {
    ws(j);
    if (j->i < j->n && j->s[j->i] == (unsigned char)c) {
        j->i++;
        return 1;
    }
    return 0;
}

static int hex4(json *j, unsigned *out) {
    unsigned v = 0;
    if (j->n - j->i < 4)
        return 0;
    for (int k = 0; k < 4; k++) {
        unsigned char c = j->s[j->i++];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= c - '0';
        else if (c >= 'a' && c <= 'f')
            v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v |= c - 'A' + 10;
        else
            return 0;
    }
    *out = v;
    return 1;
}

static size_t put_utf8(unsigned char *o, unsigned cp) {
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | cp >> 6);
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | cp >> 12);
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | cp >> 18);
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* One UTF-8 sequence at j->i (strict: no overlongs, surrogates or code
 * points past U+10FFFF); its length, or 0. */
static size_t utf8_at(const json *j) {
    unsigned char c = j->s[j->i];
    size_t len;
    unsigned cp;
    if (c < 0x80)
        return 1;
    if ((c & 0xE0) == 0xC0)
        len = 2, cp = c & 0x1F;
    else if ((c & 0xF0) == 0xE0)
        len = 3, cp = c & 0x0F;
    else if ((c & 0xF8) == 0xF0)
        len = 4, cp = c & 0x07;
    else
        return 0;
    if (j->n - j->i < len)
        return 0;
    for (size_t k = 1; k < len; k++) {
        if ((j->s[j->i + k] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (j->s[j->i + k] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

/* A string; its decoded bytes go to out (cap bytes, may be NULL). Returns
 * the decoded length, or -1 if it is not a valid JSON string. */
static long string(json *j, unsigned char *out, size_t cap) {
    size_t n = 0;
    if (!eat(j, '"'))
        return -1;
    for (;;) {
        if (j->i >= j->n)
            return -1;
        unsigned char c = j->s[j->i];
        unsigned char tmp[4];
        size_t tlen;
        if (c == '"') {
            j->i++;
            return (long)n;
        }
        if (c < 0x20)
            return -1; /* a raw control character */
        if (c == '\\') {
            if (j->n - j->i < 2)
                return -1;
            unsigned char e = j->s[j->i + 1];
            j->i += 2;
            static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
            const char *k = e ? strchr(from, e) : NULL;
            if (k != NULL) {
                tmp[0] = (unsigned char)to[k - from];
                tlen = 1;
            } else if (e == 'u') {
                unsigned cp, lo;
                if (!hex4(j, &cp))
                    return -1;
                if (cp >= 0xDC00 && cp <= 0xDFFF)
                    return -1; /* a lone low surrogate */
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (j->n - j->i < 2 || j->s[j->i] != '\\' ||
                        j->s[j->i + 1] != 'u')
                        return -1;
                    j->i += 2;
                    if (!hex4(j, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                        return -1;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                }
                tlen = put_utf8(tmp, cp);
            } else {
                return -1;
            }
        } else {
            tlen = utf8_at(j);
            if (tlen == 0)
                return -1;
            memcpy(tmp, j->s + j->i, tlen);
            j->i += tlen;
        }
        if (out != NULL && n + tlen <= cap)
            memcpy(out + n, tmp, tlen);
        n += tlen;
    }
}

static int digits(json *j) {
    size_t start = j->i;
    while (j->i < j->n && j->s[j->i] >= '0' && j->s[j->i] <= '9')
        j->i++;
    return j->i > start;
}

/* A number; *value gets it when it is a plain non-negative integer. */
static int number(json *j, uint64_t *value, int *integer) {
    ws(j);
    size_t start = j->i;
    if (j->i < j->n && j->s[j->i] == '-')
        j->i++;
    if (j->i < j->n && j->s[j->i] == '0')
        j->i++;
    else if (!digits(j))
        return 0;
    *integer = j->s[start] != '-';
    if (j->i < j->n && j->s[j->i] == '.') {
        j->i++;
        if (!digits(j))
            return 0;
        *integer = 0;
    }
    if (j->i < j->n && (j->s[j->i] == 'e' || j->s[j->i] == 'E')) {
        j->i++;
        if (j->i < j->n && (j->s[j->i] == '+' || j->s[j->i] == '-'))
            j->i++;
        if (!digits(j))
            return 0;
        *integer = 0;
    }
    if (*integer) {
        uint64_t v = 0;
        for (size_t k = start; k < j->i; k++) {
            if (v > (UINT64_MAX - 9) / 10)
                return 0; /* does not fit a u64: not what the API writes */
            v = v * 10 + (j->s[k] - '0');
        }
        *value = v;
    }
    return 1;
}

static int literal(json *j, const char *word) {
    size_t n = strlen(word);
    if (j->n - j->i < n || memcmp(j->s + j->i, word, n) != 0)
        return 0;
    j->i += n;
    return 1;
}

static int value(json *j, int depth) {
    uint64_t v;
    int integer;
    if (depth > MAX_DEPTH)
        return 0;
    ws(j);
    if (j->i >= j->n)
        return 0;
    switch (j->s[j->i]) {
    case '"':
        return string(j, NULL, 0) >= 0;
    case '[':
        j->i++;
        if (eat(j, ']'))
            return 1;
        do {
            if (!value(j, depth + 1))
                return 0;
        } while (eat(j, ','));
        return eat(j, ']');
    case '{':
        j->i++;
        if (eat(j, '}'))
            return 1;
        do {
            if (string(j, NULL, 0) < 0 || !eat(j, ':') || !value(j, depth + 1))
                return 0;
        } while (eat(j, ','));
        return eat(j, '}');
    case 't':
        return literal(j, "true");
    case 'f':
        return literal(j, "false");
    case 'n':
        return literal(j, "null");
    default:
        return number(j, &v, &integer);
    }
}

static int json_valid(const char *text) {
    json j = {(const unsigned char *)text, 0, strlen(text)};
    if (!value(&j, 0))
        return 0;
    ws(&j);
    return j.i == j.n;
}

/* ---- the listing's shape ---- */

typedef struct entry {
    unsigned char name[DC_MAX_NAME_BYTES + 1];
    size_t nlen;
    int dir;
    uint64_t size, inode;
} entry;

static int key(json *j, const char *k) {
    unsigned char got[16];
    long n = string(j, got, sizeof got);
    return n == (long)strlen(k) && memcmp(got, k, (size_t)n) == 0 &&
           eat(j, ':');
}

static int one_entry(json *j, entry *e) {
    unsigned char kind[16];
    int integer;
    long n;
    if (!eat(j, '{') || !key(j, "name"))
        return 0;
    n = string(j, e->name, DC_MAX_NAME_BYTES);
    if (n <= 0 || n > DC_MAX_NAME_BYTES)
        return 0;
    e->nlen = (size_t)n;
    e->name[n] = 0;
    if (!eat(j, ',') || !key(j, "kind"))
        return 0;
    n = string(j, kind, sizeof kind);
    if (n == 4 && memcmp(kind, "File", 4) == 0)
        e->dir = 0;
    else if (n == 9 && memcmp(kind, "Directory", 9) == 0)
        e->dir = 1;
    else
        return 0;
    return eat(j, ',') && key(j, "size") && number(j, &e->size, &integer) &&
           integer && eat(j, ',') && key(j, "inode_id") &&
           number(j, &e->inode, &integer) && integer && eat(j, '}');
}

static int name_before(const entry *a, const entry *b) {
    size_t n = a->nlen < b->nlen ? a->nlen : b->nlen;
    int c = memcmp(a->name, b->name, n);
    return c < 0 || (c == 0 && a->nlen < b->nlen);
}

/* Check a listing of directory `dir` ("" = the root) and put its entries
 * into out[0..cap); returns how many there are. */
static size_t check_listing(FsHandle *h, const char *dir, const char *text,
                            entry *out, size_t cap) {
    FUZZ_CHECK(json_valid(text));
    json j = {(const unsigned char *)text, 0, strlen(text)};
    entry prev, cur;
    size_t count = 0;
    FUZZ_CHECK(eat(&j, '['));
    if (!eat(&j, ']')) {
        do {
            FUZZ_CHECK(one_entry(&j, &cur));
            FUZZ_CHECK(count == 0 || name_before(&prev, &cur));
            /* Names are valid UTF-8 without NUL or '/'. */
            FUZZ_CHECK(memchr(cur.name, 0, cur.nlen) == NULL);
            FUZZ_CHECK(memchr(cur.name, '/', cur.nlen) == NULL);
            char path[PATH_BUF + DC_MAX_NAME_BYTES + 2];
            snprintf(path, sizeof path, "%s/%s", dir, (const char *)cur.name);
            uint64_t size, inode;
            int32_t kind;
            FUZZ_CHECK(fs_stat(h, path, &size, &kind, &inode) == Ok);
            FUZZ_CHECK(kind == cur.dir && inode == cur.inode);
            FUZZ_CHECK(size == cur.size && (!cur.dir || size == 0));
            if (count < cap)
                out[count] = cur;
            prev = cur;
            count++;
        } while (eat(&j, ','));
        FUZZ_CHECK(eat(&j, ']'));
    }
    ws(&j);
    FUZZ_CHECK(j.i == j.n);
    return count;
}

/* ---- the target ---- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    unsigned char key[DC_KDF_MASTER_KEYBYTES];
    fuzz_master_key(key);
    FsHandle *h = fs_create(16, key, sizeof key);
    FUZZ_CHECK(h != NULL);
    FUZZ_CHECK(fs_init_filesystem(h) == Ok);

    char dirs[MAX_PIECES][PATH_BUF];
    char root_names[MAX_PIECES][DC_MAX_NAME_BYTES + 1];
    size_t ndirs = 0, nroot = 0;
    size_t at = 0;
    for (int piece = 0; piece < MAX_PIECES && at < size; piece++) {
        const uint8_t *end = memchr(data + at, 0, size - at);
        size_t len = end ? (size_t)(end - (data + at)) : size - at;
        unsigned op = len ? data[at] % 4 : 0;
        size_t nlen = len ? len - 1 : 0;
        char name[PATH_BUF], path[2 * PATH_BUF + 2];
        if (nlen > DC_MAX_PATH_BYTES - 300)
            nlen = DC_MAX_PATH_BYTES - 300;
        memcpy(name, data + at + (len ? 1 : 0), nlen);
        name[nlen] = 0;
        at += len + 1;
        if (op >= 2 && ndirs > 0)
            snprintf(path, sizeof path, "%s/%s", dirs[ndirs - 1], name);
        else
            snprintf(path, sizeof path, "%s", name);
        int32_t rc = op % 2 ? fs_create_dir(h, path) : fs_create_file(h, path);
        FUZZ_CHECK(rc <= 0 && rc >= NameTooLong);
        if (rc != Ok)
            continue;
        /* The seed's rules: leading and trailing '/' do not count. */
        const char *p = path;
        while (*p == '/')
            p++;
        size_t plen = strlen(p);
        while (plen > 0 && p[plen - 1] == '/')
            plen--;
        if (op % 2 && plen < PATH_BUF) {
            memcpy(dirs[ndirs], p, plen);
            dirs[ndirs++][plen] = 0;
        }
        if (memchr(p, '/', plen) == NULL && plen <= DC_MAX_NAME_BYTES) {
            memcpy(root_names[nroot], p, plen);
            root_names[nroot++][plen] = 0;
        }
    }

    static entry listed[MAX_PIECES + 1];
    int32_t err = -99;
    char *text = fs_list_root(h, &err);
    FUZZ_CHECK(text != NULL && err == Ok);
    size_t n = check_listing(h, "", text, listed, MAX_PIECES + 1);
    FUZZ_CHECK(n >= nroot && n <= MAX_PIECES);
    for (size_t i = 0; i < nroot; i++) {
        size_t k = 0;
        while (k < n && strcmp((const char *)listed[k].name, root_names[i]))
            k++;
        FUZZ_CHECK(k < n); /* every name made at the root is listed */
    }
    fs_free_string(text);
    for (size_t i = 0; i < ndirs; i++) {
        char dir[PATH_BUF + 1];
        snprintf(dir, sizeof dir, "/%s", dirs[i]);
        text = fs_list_dir(h, dirs[i], &err);
        /* It may have been listed under a name that a later call replaced;
         * directories are never removed here, so it must still be there. */
        FUZZ_CHECK(text != NULL && err == Ok);
        check_listing(h, dir, text, NULL, 0);
        fs_free_string(text);
    }
    fs_free_string(NULL);
    fs_destroy(h);
    return 0;
}
