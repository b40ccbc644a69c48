/*
 * dc_btree.c - copy-on-write B+tree of pages, used for the namespace
 * (directories) and for every large file's extent map.
 *
 * Nodes are loaded on demand and kept in memory. Changing a node marks it and
 * every ancestor dirty (path copying): the old block is discarded (freed once
 * the commit is durable) and dc__bt_flush seals each dirty node to a new block,
 * children before parents, so every parent records its children's tags.
 * Nodes split and merge by encoded size, so any number of entries fits.
 *
 * Node encoding: u8 level | u8 0 | u16 count | entries, where a leaf entry is
 * u16 klen | u16 vlen | key | value and an internal entry is
 * u16 klen | key | child ref (24). Keys are compared bytewise.
 */
#include <stdlib.h>
#include <string.h>

#include "fs/engine.h"

#define NODE_HEADER 4
#define MAX_DEPTH 32

typedef struct bent {
    unsigned char *key; /* key bytes followed by value bytes */
    uint16_t klen;
    uint16_t vlen;
    dc__ref child;   /* internal nodes */
    dc__bnode *node; /* internal nodes: loaded child or NULL */
} bent;

struct dc__bnode {
    unsigned level;
    int dirty;
    dc__ref ref; /* on-disk location; block 0 once discarded or never written */
    size_t count, cap;
    bent *e;
    size_t bytes; /* encoded size */
};

static size_t max_bytes(const dc__btree *t) { return t->vol->chunk; }

static size_t entry_bytes(unsigned level, const bent *e) {
    return level == 0 ? 4u + e->klen + e->vlen
                      : 2u + e->klen + (size_t)DC__REF_BYTES;
}

static dc__bnode *node_new(unsigned level) {
    dc__bnode *n = calloc(1, sizeof *n);
    if (n != NULL) {
        n->level = level;
        n->bytes = NODE_HEADER;
    }
    return n;
}

static void node_free(dc__bnode *n) {
    if (n == NULL)
        return;
    for (size_t i = 0; i < n->count; i++) {
        free(n->e[i].key);
        node_free(n->e[i].node);
    }
    free(n->e);
    free(n);
}

static int cmp_key(const unsigned char *a, size_t alen, const unsigned char *b,
                   size_t blen) {
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

/* First index whose key >= key. */
static size_t lower_bound(const dc__bnode *n, const unsigned char *key,
                          size_t klen) {
    size_t lo = 0, hi = n->count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cmp_key(n->e[mid].key, n->e[mid].klen, key, klen) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The child of an internal node that covers `key`. */
static size_t child_index(const dc__bnode *n, const unsigned char *key,
                          size_t klen) {
    size_t i = lower_bound(n, key, klen);
    if (i < n->count && cmp_key(n->e[i].key, n->e[i].klen, key, klen) == 0)
        return i;
    return i == 0 ? 0 : i - 1;
}

static int reserve(dc__bnode *n, size_t extra) {
    if (n->count + extra <= n->cap)
        return DC_OK;
    size_t cap = n->cap ? n->cap * 2 : 16;
    while (cap < n->count + extra)
        cap *= 2;
    bent *e = realloc(n->e, cap * sizeof *e);
    if (e == NULL)
        return DC_ERR_NO_MEMORY;
    n->e = e;
    n->cap = cap;
    return DC_OK;
}

static int insert_at(dc__bnode *n, size_t idx, const unsigned char *key,
                     size_t klen, const unsigned char *val, size_t vlen,
                     const dc__ref *child, dc__bnode *child_node) {
    if (reserve(n, 1) != DC_OK)
        return DC_ERR_NO_MEMORY;
    unsigned char *buf = malloc(klen + vlen + 1);
    if (buf == NULL)
        return DC_ERR_NO_MEMORY;
    if (klen)
        memcpy(buf, key, klen);
    if (vlen)
        memcpy(buf + klen, val, vlen);
    memmove(n->e + idx + 1, n->e + idx, (n->count - idx) * sizeof *n->e);
    bent *e = &n->e[idx];
    memset(e, 0, sizeof *e);
    e->key = buf;
    e->klen = (uint16_t)klen;
    e->vlen = (uint16_t)vlen;
    if (child != NULL)
        e->child = *child;
    e->node = child_node;
    n->count++;
    n->bytes += entry_bytes(n->level, e);
    return DC_OK;
}

/* Remove entry idx; its child node (if loaded) is returned, not freed. */
static dc__bnode *remove_at(dc__bnode *n, size_t idx) {
    bent *e = &n->e[idx];
    dc__bnode *child = e->node;
    n->bytes -= entry_bytes(n->level, e);
    free(e->key);
    memmove(n->e + idx, n->e + idx + 1, (n->count - idx - 1) * sizeof *n->e);
    n->count--;
    return child;
}

static int set_value(dc__bnode *n, size_t idx, const unsigned char *val,
                     size_t vlen) {
    bent *e = &n->e[idx];
    unsigned char *buf = malloc(e->klen + vlen + 1);
    if (buf == NULL)
        return DC_ERR_NO_MEMORY;
    memcpy(buf, e->key, e->klen);
    if (vlen)
        memcpy(buf + e->klen, val, vlen);
    n->bytes -= entry_bytes(0, e);
    free(e->key);
    e->key = buf;
    e->vlen = (uint16_t)vlen;
    n->bytes += entry_bytes(0, e);
    return DC_OK;
}

/* ---- decoding ---- */

typedef struct parsed {
    const unsigned char *key, *val;
    size_t klen, vlen;
    dc__ref child;
} parsed;

/* Step through the entries of an encoded node; *pos starts at NODE_HEADER.
 * Returns 1 with *out filled, or DC_ERR_CORRUPT. */
static int parse_entry(const unsigned char *p, size_t len, unsigned level,
                       size_t *pos, parsed *out) {
    size_t at = *pos;
    if (at + 2 > len)
        return DC_ERR_CORRUPT;
    out->klen = (size_t)p[at] | (size_t)p[at + 1] << 8;
    at += 2;
    if (level == 0) {
        if (at + 2 > len)
            return DC_ERR_CORRUPT;
        out->vlen = (size_t)p[at] | (size_t)p[at + 1] << 8;
        at += 2;
    } else {
        out->vlen = 0;
    }
    if (out->klen > DC__MAX_KEY || at + out->klen + out->vlen > len)
        return DC_ERR_CORRUPT;
    out->key = p + at;
    at += out->klen;
    out->val = p + at;
    at += out->vlen;
    if (level > 0) {
        if (at + DC__REF_BYTES > len)
            return DC_ERR_CORRUPT;
        dc__ref_decode(p + at, &out->child);
        at += DC__REF_BYTES;
    }
    *pos = at;
    return 1;
}

static int parse_header(const unsigned char *p, size_t len, unsigned *level,
                        size_t *count) {
    if (len < NODE_HEADER || p[1] != 0 || p[0] >= MAX_DEPTH)
        return DC_ERR_CORRUPT;
    *level = p[0];
    *count = (size_t)p[2] | (size_t)p[3] << 8;
    if (*level > 0 && *count == 0)
        return DC_ERR_CORRUPT;
    return DC_OK;
}

static int decode_node(const unsigned char *p, size_t len, dc__bnode **out) {
    unsigned level;
    size_t count, pos = NODE_HEADER;
    int rc = parse_header(p, len, &level, &count);
    if (rc != DC_OK)
        return rc;
    dc__bnode *n = node_new(level);
    if (n == NULL || reserve(n, count) != DC_OK) {
        node_free(n);
        return DC_ERR_NO_MEMORY;
    }
    for (size_t i = 0; i < count; i++) {
        parsed e;
        rc = parse_entry(p, len, level, &pos, &e);
        if (rc < 0 || (i > 0 && cmp_key(n->e[i - 1].key, n->e[i - 1].klen,
                                        e.key, e.klen) >= 0)) {
            node_free(n);
            return rc < 0 ? rc : DC_ERR_CORRUPT;
        }
        rc = insert_at(n, i, e.key, e.klen, e.val, e.vlen, &e.child, NULL);
        if (rc != DC_OK) {
            node_free(n);
            return rc;
        }
    }
    if (pos != len) {
        node_free(n);
        return DC_ERR_CORRUPT;
    }
    *out = n;
    return DC_OK;
}

static size_t encode_node(const dc__bnode *n, unsigned char *p) {
    size_t at = NODE_HEADER;
    p[0] = (unsigned char)n->level;
    p[1] = 0;
    p[2] = (unsigned char)n->count;
    p[3] = (unsigned char)(n->count >> 8);
    for (size_t i = 0; i < n->count; i++) {
        const bent *e = &n->e[i];
        p[at++] = (unsigned char)e->klen;
        p[at++] = (unsigned char)(e->klen >> 8);
        if (n->level == 0) {
            p[at++] = (unsigned char)e->vlen;
            p[at++] = (unsigned char)(e->vlen >> 8);
        }
        memcpy(p + at, e->key, (size_t)e->klen + e->vlen);
        at += (size_t)e->klen + e->vlen;
        if (n->level > 0) {
            dc__ref_encode(p + at, &e->child);
            at += DC__REF_BYTES;
        }
    }
    return at;
}

static int read_node(dc__btree *t, const dc__ref *ref, unsigned expect_level,
                     dc__bnode **out) {
    size_t len;
    int rc = dc__vol_read(t->vol, ref, t->kind, NULL, &len);
    if (rc != DC_OK)
        return rc;
    dc__bnode *n;
    rc = decode_node(t->vol->plain, len, &n);
    if (rc != DC_OK)
        return rc;
    if (expect_level != (unsigned)-1 && n->level != expect_level) {
        node_free(n);
        return DC_ERR_CORRUPT;
    }
    n->ref = *ref;
    t->loaded++;
    *out = n;
    return DC_OK;
}

/* ---- tree plumbing ---------------------------------------------------------
 */

void dc__bt_init(dc__btree *t, dc__vol *vol, unsigned kind,
                 const dc__ref *root) {
    memset(t, 0, sizeof *t);
    t->vol = vol;
    t->kind = kind;
    if (root != NULL)
        t->root_ref = *root;
}

void dc__bt_drop(dc__btree *t) {
    node_free(t->root);
    t->root = NULL;
    t->loaded = 0;
}

static int load_root(dc__btree *t) {
    if (t->root != NULL)
        return DC_OK;
    if (t->root_ref.block == 0) {
        t->root = node_new(0);
        return t->root ? DC_OK : DC_ERR_NO_MEMORY;
    }
    return read_node(t, &t->root_ref, (unsigned)-1, &t->root);
}

static int load_child(dc__btree *t, dc__bnode *n, size_t idx) {
    bent *e = &n->e[idx];
    if (e->node != NULL)
        return DC_OK;
    return read_node(t, &e->child, n->level - 1, &e->node);
}

static int mark_dirty(dc__btree *t, dc__bnode *n) {
    if (n->dirty)
        return DC_OK;
    if (n->ref.block != 0) {
        int rc = dc__allocator_discard(t->vol->alloc, n->ref.block);
        if (rc != DC_OK)
            return rc;
        n->ref.block = 0;
    }
    n->dirty = 1;
    return DC_OK;
}

/* Split `n` in two by bytes; the upper half moves to *right. */
static int split(dc__bnode *n, dc__bnode **right) {
    size_t half = n->bytes / 2, acc = NODE_HEADER, s = 0;
    while (s < n->count - 1) {
        acc += entry_bytes(n->level, &n->e[s]);
        s++;
        if (acc >= half)
            break;
    }
    if (s == 0)
        s = 1;
    dc__bnode *r = node_new(n->level);
    if (r == NULL || reserve(r, n->count - s) != DC_OK) {
        node_free(r);
        return DC_ERR_NO_MEMORY;
    }
    for (size_t i = s; i < n->count; i++) {
        r->e[i - s] = n->e[i];
        size_t b = entry_bytes(n->level, &n->e[i]);
        r->bytes += b;
        n->bytes -= b;
    }
    r->count = n->count - s;
    n->count = s;
    r->dirty = 1;
    *right = r;
    return DC_OK;
}

/* ---- lookups ---- */

/* Descend to the leaf covering key, recording the path. */
static int descend(dc__btree *t, const unsigned char *key, size_t klen,
                   dc__bnode **path, size_t *idx, size_t *depth) {
    int rc = load_root(t);
    if (rc != DC_OK)
        return rc;
    dc__bnode *n = t->root;
    size_t d = 0;
    while (n->level > 0) {
        if (d + 1 >= MAX_DEPTH)
            return DC_ERR_CORRUPT;
        size_t ci = child_index(n, key, klen);
        rc = load_child(t, n, ci);
        if (rc != DC_OK)
            return rc;
        path[d] = n;
        idx[d] = ci;
        d++;
        n = n->e[ci].node;
    }
    path[d] = n;
    idx[d] = lower_bound(n, key, klen);
    *depth = d;
    return DC_OK;
}

static int copy_out(const bent *e, unsigned char *out_key, size_t *out_klen,
                    unsigned char *val, size_t *vlen) {
    if (out_key != NULL) {
        memcpy(out_key, e->key, e->klen);
        *out_klen = e->klen;
    }
    if (val != NULL) {
        if (*vlen < e->vlen) {
            *vlen = e->vlen;
            return DC_ERR_BUFFER_TOO_SMALL;
        }
        memcpy(val, e->key + e->klen, e->vlen);
    }
    if (vlen != NULL)
        *vlen = e->vlen;
    return DC_OK;
}

int dc__bt_get(dc__btree *t, const unsigned char *key, size_t klen,
               unsigned char *val, size_t *vlen) {
    dc__bnode *path[MAX_DEPTH];
    size_t idx[MAX_DEPTH], depth;
    int rc = descend(t, key, klen, path, idx, &depth);
    if (rc != DC_OK)
        return rc;
    dc__bnode *leaf = path[depth];
    size_t i = idx[depth];
    if (i >= leaf->count ||
        cmp_key(leaf->e[i].key, leaf->e[i].klen, key, klen) != 0)
        return DC_ERR_NOT_FOUND;
    return copy_out(&leaf->e[i], NULL, NULL, val, vlen);
}

int dc__bt_seek(dc__btree *t, const unsigned char *key, size_t klen,
                unsigned char *out_key, size_t *out_klen, unsigned char *val,
                size_t *vlen) {
    dc__bnode *path[MAX_DEPTH];
    size_t idx[MAX_DEPTH], depth;
    int rc = descend(t, key, klen, path, idx, &depth);
    if (rc != DC_OK)
        return rc;
    if (idx[depth] < path[depth]->count)
        return copy_out(&path[depth]->e[idx[depth]], out_key, out_klen, val,
                        vlen);
    /* Past this leaf: climb to the first ancestor with a next child, then
     * take the leftmost leaf below it. */
    size_t d = depth;
    while (d > 0) {
        d--;
        if (idx[d] + 1 < path[d]->count) {
            dc__bnode *n = path[d];
            size_t ci = idx[d] + 1;
            for (;;) {
                rc = load_child(t, n, ci);
                if (rc != DC_OK)
                    return rc;
                n = n->e[ci].node;
                if (n->level == 0)
                    break;
                ci = 0;
            }
            if (n->count == 0)
                return DC_ERR_CORRUPT;
            return copy_out(&n->e[0], out_key, out_klen, val, vlen);
        }
    }
    return DC_ERR_NOT_FOUND;
}

/* ---- insert ---- */

static int put_rec(dc__btree *t, dc__bnode *n, const unsigned char *key,
                   size_t klen, const unsigned char *val, size_t vlen,
                   dc__bnode **split_out) {
    int rc = mark_dirty(t, n);
    if (rc != DC_OK)
        return rc;
    *split_out = NULL;
    if (n->level == 0) {
        size_t i = lower_bound(n, key, klen);
        if (i < n->count && cmp_key(n->e[i].key, n->e[i].klen, key, klen) == 0)
            rc = set_value(n, i, val, vlen);
        else
            rc = insert_at(n, i, key, klen, val, vlen, NULL, NULL);
    } else {
        size_t ci = child_index(n, key, klen);
        rc = load_child(t, n, ci);
        if (rc != DC_OK)
            return rc;
        dc__bnode *right = NULL;
        rc = put_rec(t, n->e[ci].node, key, klen, val, vlen, &right);
        if (rc == DC_OK && right != NULL) {
            static const dc__ref none = {0, {0}};
            rc = insert_at(n, ci + 1, right->e[0].key, right->e[0].klen, NULL,
                           0, &none, right);
            if (rc != DC_OK)
                node_free(right);
        }
    }
    if (rc == DC_OK && n->bytes > max_bytes(t))
        rc = split(n, split_out);
    return rc;
}

int dc__bt_put(dc__btree *t, const unsigned char *key, size_t klen,
               const unsigned char *val, size_t vlen) {
    if (klen > DC__MAX_KEY || 4 + klen + vlen > (max_bytes(t) - 4) / 4)
        return DC_ERR_INVALID_ARGUMENT;
    int rc = load_root(t);
    if (rc != DC_OK)
        return rc;
    dc__bnode *right = NULL;
    rc = put_rec(t, t->root, key, klen, val, vlen, &right);
    if (rc != DC_OK || right == NULL)
        return rc;
    /* The root split: grow the tree by one level. */
    dc__bnode *left = t->root, *root = node_new(left->level + 1);
    static const dc__ref none = {0, {0}};
    if (root == NULL ||
        insert_at(root, 0, left->e[0].key, left->e[0].klen, NULL, 0, &none,
                  left) != DC_OK ||
        insert_at(root, 1, right->e[0].key, right->e[0].klen, NULL, 0, &none,
                  right) != DC_OK) {
        if (root != NULL && root->count > 0)
            root->e[0].node = NULL;
        node_free(root);
        node_free(right);
        return DC_ERR_NO_MEMORY;
    }
    root->dirty = 1;
    t->root = root;
    return DC_OK;
}

/* ---- delete ---- */

/* Merge child ci of n with a neighbour if it is under a quarter full and the
 * two fit in one node. */
static int rebalance(dc__btree *t, dc__bnode *n, size_t ci) {
    dc__bnode *child = n->e[ci].node;
    if (child->count == 0) {
        node_free(remove_at(n, ci)); /* its block was discarded when dirtied */
        return DC_OK;
    }
    if (child->bytes >= max_bytes(t) / 4 || n->count < 2)
        return DC_OK;
    size_t li = ci + 1 < n->count ? ci : ci - 1; /* merge (li, li+1) */
    int rc = load_child(t, n, li);
    if (rc == DC_OK)
        rc = load_child(t, n, li + 1);
    if (rc != DC_OK)
        return rc;
    dc__bnode *left = n->e[li].node, *right = n->e[li + 1].node;
    if (left->bytes + right->bytes - NODE_HEADER > max_bytes(t))
        return DC_OK;
    if ((rc = mark_dirty(t, left)) != DC_OK ||
        (rc = mark_dirty(t, right)) != DC_OK ||
        (rc = reserve(left, right->count)) != DC_OK)
        return rc;
    for (size_t i = 0; i < right->count; i++) {
        left->e[left->count++] = right->e[i];
        left->bytes += entry_bytes(left->level, &right->e[i]);
    }
    right->count = 0;
    node_free(remove_at(n, li + 1));
    return DC_OK;
}

static int del_rec(dc__btree *t, dc__bnode *n, const unsigned char *key,
                   size_t klen) {
    int rc = mark_dirty(t, n);
    if (rc != DC_OK)
        return rc;
    if (n->level == 0) {
        size_t i = lower_bound(n, key, klen);
        if (i >= n->count || cmp_key(n->e[i].key, n->e[i].klen, key, klen) != 0)
            return DC_ERR_NOT_FOUND;
        remove_at(n, i);
        return DC_OK;
    }
    size_t ci = child_index(n, key, klen);
    rc = load_child(t, n, ci);
    if (rc == DC_OK)
        rc = del_rec(t, n->e[ci].node, key, klen);
    if (rc == DC_OK)
        rc = rebalance(t, n, ci);
    return rc;
}

int dc__bt_del(dc__btree *t, const unsigned char *key, size_t klen) {
    /* Look first, so a missing key dirties nothing. */
    size_t vlen = 0;
    int rc = dc__bt_get(t, key, klen, NULL, &vlen);
    if (rc != DC_OK)
        return rc;
    rc = del_rec(t, t->root, key, klen);
    if (rc != DC_OK)
        return rc;
    /* Collapse a root with a single child (its block was discarded). */
    while (t->root->level > 0 && t->root->count <= 1) {
        dc__bnode *old = t->root;
        if (old->count == 0) {
            old->level = 0;
            break;
        }
        rc = load_child(t, old, 0);
        if (rc != DC_OK)
            return rc;
        t->root = remove_at(old, 0);
        node_free(old);
    }
    return DC_OK;
}

/* ---- flush ---- */

static int flush_rec(dc__btree *t, dc__bnode *n) {
    if (!n->dirty)
        return DC_OK;
    for (size_t i = 0; n->level > 0 && i < n->count; i++) {
        dc__bnode *c = n->e[i].node;
        if (c != NULL && c->dirty) {
            int rc = flush_rec(t, c);
            if (rc != DC_OK)
                return rc;
            n->e[i].child = c->ref;
        }
    }
    size_t len = encode_node(n, t->vol->plain);
    int rc = dc__vol_queue(t->vol, t->kind, t->vol->plain, len, &n->ref);
    if (rc == DC_OK)
        n->dirty = 0;
    return rc;
}

int dc__bt_flush(dc__btree *t) {
    if (t->root == NULL)
        return DC_OK;
    if (t->root->level == 0 && t->root->count == 0) {
        /* An empty tree has no block; a dirtied root already gave its back. */
        if (!t->root->dirty && t->root->ref.block != 0)
            return DC_OK;
        t->root->dirty = 0;
        memset(&t->root_ref, 0, sizeof t->root_ref);
        memset(&t->root->ref, 0, sizeof t->root->ref);
        return DC_OK;
    }
    int rc = flush_rec(t, t->root);
    if (rc == DC_OK)
        t->root_ref = t->root->ref;
    return rc;
}

int dc__bt_small(dc__btree *t, size_t max) {
    if (load_root(t) != DC_OK)
        return -1;
    if (t->root->level != 0 || t->root->count > max)
        return -1;
    return (int)t->root->count;
}

int dc__bt_leaf_entry(dc__btree *t, size_t i, unsigned char *key, size_t *klen,
                      unsigned char *val, size_t *vlen) {
    if (t->root == NULL || t->root->level != 0 || i >= t->root->count)
        return DC_ERR_NOT_FOUND;
    return copy_out(&t->root->e[i], key, klen, val, vlen);
}

/* ---- checking one node (the fuzzers, fsck) ---- */

int dc__bt_check_node(const unsigned char *p, size_t len) {
    dc__bnode *n;
    if (p == NULL)
        return DC_ERR_INVALID_ARGUMENT;
    int rc = decode_node(p, len, &n);
    if (rc != DC_OK)
        return rc;
    /* The decoder accepts exactly what the encoder writes, and the size
     * accounting that drives splits and merges matches the encoding. */
    unsigned char *again = n->bytes == len ? malloc(len) : NULL;
    if (n->bytes != len)
        rc = DC_ERR_INTERNAL;
    else if (again == NULL)
        rc = DC_ERR_NO_MEMORY;
    else if (encode_node(n, again) != len || memcmp(again, p, len) != 0)
        rc = DC_ERR_INTERNAL;
    free(again);
    node_free(n);
    return rc;
}

/* ---- whole-tree traversals ---- */

static int discard_rec(dc__btree *t, dc__bnode *n, dc__entry_fn on_entry,
                       void *ctx) {
    int rc = mark_dirty(t, n); /* gives the block back once */
    for (size_t i = 0; rc == DC_OK && i < n->count; i++) {
        bent *e = &n->e[i];
        if (n->level == 0) {
            if (on_entry != NULL)
                rc = on_entry(ctx, e->key, e->klen, e->key + e->klen, e->vlen);
        } else {
            rc = load_child(t, n, i);
            if (rc == DC_OK)
                rc = discard_rec(t, e->node, on_entry, ctx);
        }
    }
    return rc;
}

int dc__bt_discard_all(dc__btree *t, dc__entry_fn on_entry, void *ctx) {
    int rc = load_root(t);
    if (rc == DC_OK)
        rc = discard_rec(t, t->root, on_entry, ctx);
    if (rc != DC_OK)
        return rc;
    dc__bt_drop(t);
    memset(&t->root_ref, 0, sizeof t->root_ref);
    return DC_OK;
}

static int walk_rec(dc__vol *vol, unsigned kind, const dc__ref *ref,
                    unsigned expect_level, unsigned depth, dc__node_fn on_node,
                    dc__entry_fn on_entry, void *ctx) {
    if (depth >= MAX_DEPTH)
        return DC_ERR_CORRUPT;
    size_t len;
    int rc = dc__vol_read(vol, ref, kind, NULL, &len);
    if (rc != DC_OK)
        return rc;
    unsigned char *copy = malloc(len ? len : 1);
    if (copy == NULL)
        return DC_ERR_NO_MEMORY;
    memcpy(copy, vol->plain, len);
    unsigned level = 0;
    size_t count = 0, pos = NODE_HEADER;
    rc = parse_header(copy, len, &level, &count);
    if (rc == DC_OK && expect_level != (unsigned)-1 && level != expect_level)
        rc = DC_ERR_CORRUPT;
    if (rc == DC_OK && on_node != NULL)
        rc = on_node(ctx, ref, level);
    for (size_t i = 0; rc == DC_OK && i < count; i++) {
        parsed e;
        rc = parse_entry(copy, len, level, &pos, &e);
        if (rc < 0)
            break;
        rc = DC_OK;
        if (level == 0) {
            if (on_entry != NULL)
                rc = on_entry(ctx, e.key, e.klen, e.val, e.vlen);
        } else {
            rc = walk_rec(vol, kind, &e.child, level - 1, depth + 1, on_node,
                          on_entry, ctx);
        }
    }
    if (rc == DC_OK && pos != len)
        rc = DC_ERR_CORRUPT;
    free(copy);
    return rc;
}

int dc__bt_walk(dc__vol *vol, unsigned kind, const dc__ref *root,
                dc__node_fn on_node, dc__entry_fn on_entry, void *ctx) {
    if (root->block == 0)
        return DC_OK;
    return walk_rec(vol, kind, root, (unsigned)-1, 0, on_node, on_entry, ctx);
}
