/*
 * dc_ns.c - paths and the namespace: one B+tree keyed by
 * (parent inode, u64 big-endian) || name, valued by the entry's inode
 * record. A directory's entries are one contiguous key range, so lookups
 * are O(log n) and listing is a range scan; moving a directory moves one
 * entry.
 */
#include <stdlib.h>
#include <string.h>

#include "fs/engine.h"

size_t dc__ns_key(unsigned char *key, uint64_t parent, const char *name,
                  size_t nlen) {
    for (int i = 0; i < 8; i++)
        key[i] = (unsigned char)(parent >> (56 - 8 * i));
    memcpy(key + 8, name, nlen);
    return 8 + nlen;
}

static uint64_t key_parent(const unsigned char *key) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | key[i];
    return v;
}

/* Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF). */
static int valid_utf8(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t len;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2, cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3, cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4, cp = c & 0x07;
        } else {
            return 0;
        }
        if (i + len > n)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
            (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += len;
    }
    return 1;
}

static int check_name(dc_fs *fs, const char *name, size_t n) {
    if (n == 0)
        return dc__fs_error(fs, DC_ERR_INVALID_ARGUMENT,
                            "empty path component");
    if (n > DC_MAX_NAME_BYTES)
        return dc__fs_error(fs, DC_ERR_NAME_TOO_LONG,
                            "name of %zu bytes (at most %d)", n,
                            DC_MAX_NAME_BYTES);
    if ((n == 1 && name[0] == '.') ||
        (n == 2 && name[0] == '.' && name[1] == '.'))
        return dc__fs_error(fs, DC_ERR_INVALID_ARGUMENT,
                            "'.' and '..' are not names");
    if (!valid_utf8((const unsigned char *)name, n))
        return dc__fs_error(fs, DC_ERR_INVALID_ARGUMENT,
                            "name is not valid UTF-8");
    return DC_OK;
}

static int get_entry(dc_fs *fs, uint64_t parent, const char *name, size_t nlen,
                     dc__inode *ino) {
    unsigned char key[DC__NS_KEY_MAX], val[DC__INODE_MAX_BYTES];
    size_t vlen = sizeof val;
    size_t klen = dc__ns_key(key, parent, name, nlen);
    int rc = dc__bt_get(&fs->ns, key, klen, val, &vlen);
    if (rc == DC_OK)
        rc = dc__inode_decode(val, vlen, ino);
    if (rc == DC_ERR_CORRUPT)
        dc__fs_error(fs, rc, "corrupt directory entry");
    return rc;
}

int dc__ns_put(dc_fs *fs, uint64_t parent, const char *name, size_t nlen,
               const dc__inode *ino) {
    unsigned char key[DC__NS_KEY_MAX], val[DC__INODE_MAX_BYTES];
    size_t klen = dc__ns_key(key, parent, name, nlen);
    size_t vlen = dc__inode_encode(val, ino);
    return dc__bt_put(&fs->ns, key, klen, val, vlen);
}

int dc__ns_put_parent(dc_fs *fs, const dc__loc *loc) {
    if (loc->parent_is_root) {
        fs->sb.root_dir = loc->parent_ino;
        return DC_OK;
    }
    return dc__ns_put(fs, loc->grandparent, loc->pname, loc->pnlen,
                      &loc->parent_ino);
}

int dc__ns_resolve(dc_fs *fs, const char *path, dc__loc *loc) {
    memset(loc, 0, sizeof *loc);
    if (path == NULL || path[0] != '/')
        return dc__fs_error(fs, DC_ERR_INVALID_ARGUMENT,
                            "paths must be absolute (start with '/')");
    size_t total = strlen(path);
    if (total > DC_MAX_PATH_BYTES)
        return dc__fs_error(fs, DC_ERR_NAME_TOO_LONG, "path longer than %d",
                            DC_MAX_PATH_BYTES);
    if (total > 1 && path[total - 1] == '/')
        total--; /* one trailing slash is ignored */
    loc->is_root = total == 1;
    loc->exists = 1;
    loc->ino = fs->sb.root_dir;
    loc->parent = DC__ROOT_INODE;
    loc->parent_is_root = 1;
    loc->parent_ino = fs->sb.root_dir;
    size_t pos = 1;
    while (pos < total) {
        const char *name = path + pos;
        const char *slash = memchr(name, '/', total - pos);
        size_t n = slash ? (size_t)(slash - name) : total - pos;
        int rc = check_name(fs, name, n);
        if (rc != DC_OK)
            return rc;
        if (!loc->exists)
            return dc__fs_error(fs, DC_ERR_NOT_FOUND, "no such directory: %.*s",
                                (int)(pos - 1), path);
        if (loc->ino.type != DC_TYPE_DIRECTORY)
            return dc__fs_error(fs, DC_ERR_NOT_A_DIRECTORY,
                                "not a directory: %.*s", (int)(pos - 1), path);
        /* Step down: the current entry becomes the parent. */
        if (pos > 1) {
            loc->parent_is_root = 0;
            loc->grandparent = loc->parent;
            loc->pnlen = loc->nlen;
            memcpy(loc->pname, loc->name, loc->nlen);
        }
        loc->parent_ino = loc->ino;
        loc->parent = loc->ino.id;
        memcpy(loc->name, name, n);
        loc->name[n] = 0;
        loc->nlen = n;
        rc = get_entry(fs, loc->parent, name, n, &loc->ino);
        if (rc == DC_ERR_NOT_FOUND)
            loc->exists = 0;
        else if (rc != DC_OK)
            return rc;
        pos += n + 1;
    }
    return DC_OK;
}

static int need(dc_fs *fs, const dc__loc *loc, const char *path) {
    if (!loc->exists)
        return dc__fs_error(fs, DC_ERR_NOT_FOUND,
                            "no such file or directory: %s", path);
    return DC_OK;
}

static void fill_stat(const dc__inode *ino, dc_stat *st) {
    memset(st, 0, sizeof *st);
    st->inode = ino->id;
    st->type = ino->type;
    st->mode = ino->mode;
    st->size = ino->size;
    st->mtime_ns = ino->mtime_ns;
    st->ctime_ns = ino->ctime_ns;
    st->blocks = ino->blocks;
}

#define LOCKED(fs, body)                                                       \
    do {                                                                       \
        if ((fs) == NULL)                                                      \
            return DC_ERR_INVALID_ARGUMENT;                                    \
        pthread_mutex_lock(&(fs)->lock);                                       \
        (fs)->errmsg[0] = 0;                                                   \
        int rc_ = dc__fs_detail((fs), (body));                                 \
        pthread_mutex_unlock(&(fs)->lock);                                     \
        return rc_;                                                            \
    } while (0)

static int do_stat(dc_fs *fs, const char *path, dc_stat *out) {
    dc__loc loc;
    if (out == NULL)
        return DC_ERR_INVALID_ARGUMENT;
    int rc = dc__ns_resolve(fs, path, &loc);
    if (rc == DC_OK)
        rc = need(fs, &loc, path);
    if (rc == DC_OK)
        fill_stat(&loc.ino, out);
    return rc;
}

int dc_fs_stat(dc_fs *fs, const char *path, dc_stat *out) {
    LOCKED(fs, do_stat(fs, path, out));
}

/* Add a new entry under loc (which must not exist) and count it in the
 * parent directory. */
static int add_entry(dc_fs *fs, dc__loc *loc, uint32_t type, uint32_t mode) {
    int64_t now = dc__now_ns();
    dc__inode ino;
    memset(&ino, 0, sizeof ino);
    ino.type = type;
    ino.mode = mode & 07777;
    if (fs->sb.next_inode == UINT64_MAX)
        return dc__fs_error(fs, DC_ERR_NO_SPACE, "inode numbers exhausted");
    ino.id = fs->sb.next_inode++;
    ino.mtime_ns = ino.ctime_ns = now;
    int rc = dc__ns_put(fs, loc->parent, loc->name, loc->nlen, &ino);
    if (rc != DC_OK)
        return rc;
    if (type == DC_TYPE_FILE)
        fs->sb.files++;
    else
        fs->sb.directories++;
    loc->parent_ino.size++;
    loc->parent_ino.mtime_ns = now;
    loc->ino = ino;
    loc->exists = 1;
    return dc__ns_put_parent(fs, loc);
}

static int create_checks(dc_fs *fs, const dc__loc *loc, const char *path) {
    if (loc->is_root || loc->exists)
        return dc__fs_error(fs, DC_ERR_ALREADY_EXISTS, "already exists: %s",
                            path);
    return DC_OK;
}

/* Start a mutation of `path`: the handle accepts changes and the path
 * resolves (and, with `must_exist`, names an entry). */
static int begin_at(dc_fs *fs, const char *path, dc__loc *loc, int must_exist) {
    int rc = dc__fs_begin_op(fs);
    if (rc == DC_OK)
        rc = dc__ns_resolve(fs, path, loc);
    if (rc == DC_OK && must_exist)
        rc = need(fs, loc, path);
    return rc;
}

static int do_mkdir(dc_fs *fs, const char *path, uint32_t mode) {
    dc__loc loc;
    int rc = begin_at(fs, path, &loc, 0);
    if (rc == DC_OK)
        rc = create_checks(fs, &loc, path);
    if (rc != DC_OK)
        return rc;
    return dc__fs_end_op(fs, add_entry(fs, &loc, DC_TYPE_DIRECTORY, mode));
}

int dc_fs_mkdir(dc_fs *fs, const char *path, uint32_t mode) {
    LOCKED(fs, do_mkdir(fs, path, mode));
}

static int do_makedirs(dc_fs *fs, const char *path, uint32_t mode) {
    int rc = dc__fs_begin_op(fs);
    if (rc != DC_OK)
        return rc;
    if (path == NULL || path[0] != '/')
        return dc__fs_error(fs, DC_ERR_INVALID_ARGUMENT,
                            "paths must be absolute (start with '/')");
    size_t total = strlen(path);
    if (total > DC_MAX_PATH_BYTES)
        return dc__fs_error(fs, DC_ERR_NAME_TOO_LONG, "path too long");
    char *prefix = malloc(total + 1);
    if (prefix == NULL)
        return DC_ERR_NO_MEMORY;
    int mutated = 0;
    for (size_t end = 1; rc == DC_OK && end <= total; end++) {
        if (end < total && path[end] != '/')
            continue;
        memcpy(prefix, path, end);
        prefix[end] = 0;
        if (end == 1 && total >= 1 && path[1] == 0)
            break;
        dc__loc loc;
        rc = dc__ns_resolve(fs, prefix, &loc);
        if (rc != DC_OK)
            break;
        if (loc.exists) {
            if (loc.ino.type != DC_TYPE_DIRECTORY)
                rc = dc__fs_error(fs, DC_ERR_NOT_A_DIRECTORY,
                                  "not a directory: %s", prefix);
            continue;
        }
        rc = add_entry(fs, &loc, DC_TYPE_DIRECTORY, mode);
        mutated = 1;
    }
    free(prefix);
    if (!mutated)
        return rc;
    return dc__fs_end_op(fs, rc);
}

int dc_fs_makedirs(dc_fs *fs, const char *path, uint32_t mode) {
    LOCKED(fs, do_makedirs(fs, path, mode));
}

static int do_create(dc_fs *fs, const char *path, uint32_t mode,
                     int exclusive) {
    dc__loc loc;
    int rc = begin_at(fs, path, &loc, 0);
    if (rc != DC_OK)
        return rc;
    if (loc.exists && !loc.is_root && !exclusive)
        return loc.ino.type == DC_TYPE_FILE
                   ? DC_OK
                   : dc__fs_error(fs, DC_ERR_NOT_A_FILE, "is a directory: %s",
                                  path);
    rc = create_checks(fs, &loc, path);
    if (rc != DC_OK)
        return rc;
    return dc__fs_end_op(fs, add_entry(fs, &loc, DC_TYPE_FILE, mode));
}

int dc_fs_create(dc_fs *fs, const char *path, uint32_t mode, int exclusive) {
    LOCKED(fs, do_create(fs, path, mode, exclusive));
}

/* Delete loc's entry (already validated) and uncount it in its parent;
 * with `discard`, a file's blocks are given back too (not when moving). */
static int delete_entry(dc_fs *fs, dc__loc *loc, int discard) {
    unsigned char key[DC__NS_KEY_MAX];
    size_t klen = dc__ns_key(key, loc->parent, loc->name, loc->nlen);
    int rc = DC_OK;
    if (loc->ino.type == DC_TYPE_FILE) {
        if (discard)
            rc = dc__file_discard(fs, loc);
        fs->sb.files--;
    } else {
        fs->sb.directories--;
    }
    if (rc == DC_OK)
        rc = dc__bt_del(&fs->ns, key, klen);
    if (rc != DC_OK)
        return rc;
    loc->parent_ino.size--;
    loc->parent_ino.mtime_ns = dc__now_ns();
    loc->exists = 0;
    return dc__ns_put_parent(fs, loc);
}

static int dir_is_empty(dc_fs *fs, uint64_t dir) {
    unsigned char key[DC__NS_KEY_MAX], found[DC__MAX_KEY];
    size_t klen = dc__ns_key(key, dir, "", 0), flen;
    int rc = dc__bt_seek(&fs->ns, key, klen, found, &flen, NULL, NULL);
    if (rc == DC_ERR_NOT_FOUND)
        return 1;
    if (rc != DC_OK)
        return rc;
    return flen < 8 || key_parent(found) != dir;
}

static int do_remove(dc_fs *fs, const char *path, uint32_t type) {
    dc__loc loc;
    int rc = begin_at(fs, path, &loc, 1);
    if (rc != DC_OK)
        return rc;
    if (loc.is_root)
        return dc__fs_error(fs, DC_ERR_INVALID_ARGUMENT,
                            "cannot remove the root directory");
    if (type == DC_TYPE_FILE && loc.ino.type != DC_TYPE_FILE)
        return dc__fs_error(fs, DC_ERR_NOT_A_FILE, "is a directory: %s", path);
    if (type == DC_TYPE_DIRECTORY) {
        if (loc.ino.type != DC_TYPE_DIRECTORY)
            return dc__fs_error(fs, DC_ERR_NOT_A_DIRECTORY,
                                "not a directory: %s", path);
        rc = dir_is_empty(fs, loc.ino.id);
        if (rc < 0)
            return rc;
        if (!rc)
            return dc__fs_error(fs, DC_ERR_DIRECTORY_NOT_EMPTY,
                                "directory not empty: %s", path);
    }
    return dc__fs_end_op(fs, delete_entry(fs, &loc, 1));
}

int dc_fs_remove(dc_fs *fs, const char *path) {
    LOCKED(fs, do_remove(fs, path, DC_TYPE_FILE));
}

int dc_fs_rmdir(dc_fs *fs, const char *path) {
    LOCKED(fs, do_remove(fs, path, DC_TYPE_DIRECTORY));
}

/* Does resolving `path` pass through directory `ancestor`? (Entries only
 * know their parent's id, so check each prefix of the path.) */
static int path_inside(dc_fs *fs, const char *path, uint64_t ancestor) {
    size_t total = strlen(path);
    char prefix[DC_MAX_PATH_BYTES + 1];
    for (size_t end = 1; end <= total; end++) {
        if (end < total && path[end] != '/')
            continue;
        memcpy(prefix, path, end);
        prefix[end] = 0;
        dc__loc loc;
        if (dc__ns_resolve(fs, prefix, &loc) != DC_OK || !loc.exists)
            return 0;
        if (loc.ino.id == ancestor)
            return 1;
    }
    return 0;
}

static int do_rename(dc_fs *fs, const char *from, const char *to) {
    dc__loc src, dst;
    int rc = dc__fs_begin_op(fs);
    if (rc == DC_OK)
        rc = dc__ns_resolve(fs, from, &src);
    if (rc == DC_OK)
        rc = need(fs, &src, from);
    if (rc == DC_OK)
        rc = dc__ns_resolve(fs, to, &dst);
    if (rc != DC_OK)
        return rc;
    if (src.is_root || dst.is_root)
        return dc__fs_error(fs, DC_ERR_INVALID_ARGUMENT,
                            "cannot rename the root directory");
    if (dst.exists && dst.ino.id == src.ino.id)
        return DC_OK; /* same entry: nothing to do */
    if (src.ino.type == DC_TYPE_DIRECTORY && path_inside(fs, to, src.ino.id))
        return dc__fs_error(fs, DC_ERR_INVALID_ARGUMENT,
                            "cannot move a directory into itself: %s", to);
    if (dst.exists) {
        if (src.ino.type == DC_TYPE_FILE && dst.ino.type != DC_TYPE_FILE)
            return dc__fs_error(fs, DC_ERR_NOT_A_FILE, "is a directory: %s",
                                to);
        if (src.ino.type == DC_TYPE_DIRECTORY) {
            if (dst.ino.type != DC_TYPE_DIRECTORY)
                return dc__fs_error(fs, DC_ERR_NOT_A_DIRECTORY,
                                    "not a directory: %s", to);
            rc = dir_is_empty(fs, dst.ino.id);
            if (rc < 0)
                return rc;
            if (!rc)
                return dc__fs_error(fs, DC_ERR_DIRECTORY_NOT_EMPTY,
                                    "directory not empty: %s", to);
        }
    }
    /* Mutations start here. */
    dc__inode moving = src.ino;
    if (dst.exists)
        rc = delete_entry(fs, &dst, 1);
    if (rc == DC_OK) {
        /* Re-resolve: replacing the target may have changed either parent's
         * record (they can be the same directory). */
        rc = dc__ns_resolve(fs, from, &src);
    }
    if (rc == DC_OK)
        rc = delete_entry(fs, &src, 0);
    if (rc == DC_OK)
        rc = dc__ns_resolve(fs, to, &dst);
    if (rc == DC_OK) {
        moving.ctime_ns = dc__now_ns();
        rc = dc__ns_put(fs, dst.parent, dst.name, dst.nlen, &moving);
    }
    if (rc == DC_OK) {
        if (moving.type == DC_TYPE_FILE)
            fs->sb.files++;
        else
            fs->sb.directories++;
        dst.parent_ino.size++;
        dst.parent_ino.mtime_ns = moving.ctime_ns;
        rc = dc__ns_put_parent(fs, &dst);
    }
    if (rc == DC_OK) {
        dc__file *f = dc__file_find(fs, moving.id);
        if (f != NULL) {
            f->parent = dst.parent;
            f->nlen = dst.nlen;
            memcpy(f->name, dst.name, dst.nlen + 1);
        }
    }
    return dc__fs_end_op(fs, rc);
}

int dc_fs_rename(dc_fs *fs, const char *from, const char *to) {
    if (from == NULL || to == NULL)
        return DC_ERR_INVALID_ARGUMENT;
    LOCKED(fs, do_rename(fs, from, to));
}

static int do_set_attr(dc_fs *fs, const char *path, int64_t mtime,
                       int set_mtime, uint32_t mode) {
    dc__loc loc;
    int rc = begin_at(fs, path, &loc, 1);
    if (rc != DC_OK)
        return rc;
    if (set_mtime)
        loc.ino.mtime_ns = mtime;
    else
        loc.ino.mode = mode & 07777;
    loc.ino.ctime_ns = dc__now_ns();
    if (loc.is_root) {
        fs->sb.root_dir = loc.ino;
        return dc__fs_end_op(fs, DC_OK);
    }
    return dc__fs_end_op(
        fs, dc__ns_put(fs, loc.parent, loc.name, loc.nlen, &loc.ino));
}

int dc_fs_set_mtime(dc_fs *fs, const char *path, int64_t mtime_ns) {
    LOCKED(fs, do_set_attr(fs, path, mtime_ns, 1, 0));
}

int dc_fs_chmod(dc_fs *fs, const char *path, uint32_t mode) {
    LOCKED(fs, do_set_attr(fs, path, 0, 0, mode));
}

/* ---- directory cursors ---- */

struct dc_dir {
    dc_fs *fs;
    uint64_t dir;
    size_t nlen;
    char last[DC_MAX_NAME_BYTES + 1];
    int started;
    int done;
};

static int do_opendir(dc_fs *fs, dc_dir **out, const char *path) {
    dc__loc loc;
    int rc = dc__ns_resolve(fs, path, &loc);
    if (rc == DC_OK)
        rc = need(fs, &loc, path);
    if (rc != DC_OK)
        return rc;
    if (loc.ino.type != DC_TYPE_DIRECTORY)
        return dc__fs_error(fs, DC_ERR_NOT_A_DIRECTORY, "not a directory: %s",
                            path);
    dc_dir *d = calloc(1, sizeof *d);
    if (d == NULL)
        return DC_ERR_NO_MEMORY;
    d->fs = fs;
    d->dir = loc.ino.id;
    *out = d;
    return DC_OK;
}

int dc_fs_opendir(dc_dir **out, dc_fs *fs, const char *path) {
    if (out == NULL)
        return DC_ERR_INVALID_ARGUMENT;
    *out = NULL;
    LOCKED(fs, do_opendir(fs, out, path));
}

static int do_dir_next(dc_dir *d, char *name, size_t cap, dc_stat *st) {
    dc_fs *fs = d->fs;
    unsigned char key[DC__NS_KEY_MAX + 1], found[DC__MAX_KEY];
    unsigned char val[DC__INODE_MAX_BYTES];
    size_t klen = dc__ns_key(key, d->dir, d->last, d->nlen), flen,
           vlen = sizeof val;
    if (d->done)
        return 0;
    if (d->started)
        key[klen++] = 0; /* the smallest key after the last name */
    int rc = dc__bt_seek(&fs->ns, key, klen, found, &flen, val, &vlen);
    if (rc == DC_ERR_NOT_FOUND ||
        (rc == DC_OK && (flen < 9 || key_parent(found) != d->dir))) {
        d->done = 1;
        return 0;
    }
    if (rc != DC_OK)
        return rc;
    /* The cursor only moves forward: a tree whose separator keys disagree
     * with its leaves could otherwise return the same entry forever. */
    size_t common = flen < klen ? flen : klen;
    int order = memcmp(found, key, common);
    if (order < 0 || (order == 0 && flen < klen))
        return dc__fs_error(fs, DC_ERR_CORRUPT,
                            "namespace tree out of order (directory %llu)",
                            (unsigned long long)d->dir);
    dc__inode ino;
    rc = dc__inode_decode(val, vlen, &ino);
    if (rc != DC_OK)
        return dc__fs_error(fs, rc, "corrupt directory entry");
    d->nlen = flen - 8;
    memcpy(d->last, found + 8, d->nlen);
    d->last[d->nlen] = 0;
    d->started = 1;
    if (name != NULL)
        memcpy(name, d->last, d->nlen + 1);
    if (st != NULL)
        fill_stat(&ino, st);
    (void)cap;
    return 1;
}

int dc_dir_next(dc_dir *dir, char *name, size_t name_cap, dc_stat *st) {
    if (dir == NULL || (name != NULL && name_cap < DC_MAX_NAME_BYTES + 1))
        return DC_ERR_INVALID_ARGUMENT;
    LOCKED(dir->fs, do_dir_next(dir, name, name_cap, st));
}

void dc_dir_free(dc_dir *dir) { free(dir); }
