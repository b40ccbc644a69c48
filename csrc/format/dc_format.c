/*
 * dc_format.c - encoding of the on-disk records: header (block 0), root
 * pointers (blocks 1 and 2), superblock, inode records, extent values.
 * docs/FORMAT.md is the specification; keep the two in step.
 */
#include <string.h>

#include <sodium.h>

#include "fs/engine.h"

static const unsigned char header_magic[8] = {'D', 'C', 'R', 'Y',
                                              'P', 'T', 'F', 'S'};
static const char root_mac_context[] = "doublecrypt root pointer v2";

void dc__ref_encode(unsigned char *p, const dc__ref *ref) {
    dc__store_u64le(p, ref->block);
    memcpy(p + 8, ref->tag, DC_CODEC_TAGBYTES);
}

void dc__ref_decode(const unsigned char *p, dc__ref *ref) {
    ref->block = dc__load_u64le(p);
    memcpy(ref->tag, p + 8, DC_CODEC_TAGBYTES);
}

/* ---- header ---- */
/* 0 magic[8] | 8 u32 format version | 12 u32 block size |
 * 16 u64 total blocks | 24 volume id[16] | 40 reserved[8] |
 * 48 HMAC-SHA256(root MAC key, bytes 0..48) | 80.. random */

void dc__header_encode(unsigned char *block, const dc__header *h,
                       const unsigned char *mac_key) {
    dc__random_fill(block, h->block_size);
    memcpy(block, header_magic, sizeof header_magic);
    dc__store_u32le(block + 8, DC_FORMAT_VERSION);
    dc__store_u32le(block + 12, h->block_size);
    dc__store_u64le(block + 16, h->total_blocks);
    memcpy(block + 24, h->volume_id, DC_CODEC_VOLUME_IDBYTES);
    memset(block + 40, 0, 8);
    crypto_auth_hmacsha256(block + DC__HEADER_FIELDS_BYTES, block,
                           DC__HEADER_FIELDS_BYTES, mac_key);
    dc__keyslots_clear(block);
}

int dc__header_decode(const unsigned char *buf, size_t len, dc__header *h) {
    if (buf == NULL || len < DC__HEADER_FIELDS_BYTES + DC__MAC_BYTES ||
        memcmp(buf, header_magic, sizeof header_magic) != 0)
        return DC_ERR_CORRUPT;
    if (dc__load_u32le(buf + 8) != DC_FORMAT_VERSION)
        return DC_ERR_UNSUPPORTED;
    h->block_size = dc__load_u32le(buf + 12);
    h->total_blocks = dc__load_u64le(buf + 16);
    memcpy(h->volume_id, buf + 24, DC_CODEC_VOLUME_IDBYTES);
    if (h->block_size < DC_MIN_BLOCK_SIZE ||
        h->block_size > DC_MAX_BLOCK_SIZE ||
        (h->block_size & (h->block_size - 1)) != 0 ||
        h->total_blocks <= DC_FIRST_DATA_BLOCK)
        return DC_ERR_CORRUPT;
    return DC_OK;
}

int dc__header_verify(const unsigned char *block,
                      const unsigned char *mac_key) {
    return crypto_auth_hmacsha256_verify(block + DC__HEADER_FIELDS_BYTES, block,
                                         DC__HEADER_FIELDS_BYTES, mac_key) == 0
               ? DC_OK
               : DC_ERR_AUTH;
}

/* ---- root pointers ---- */
/* 0 u64 generation | 8 superblock ref[24] | 32 HMAC-SHA256(root MAC key,
 * context || volume id || slot || bytes 0..32) | 64.. random */

static void root_mac(unsigned char *mac, const unsigned char *fields, int slot,
                     const unsigned char *volume_id,
                     const unsigned char *mac_key) {
    crypto_auth_hmacsha256_state st;
    unsigned char s = (unsigned char)slot;
    crypto_auth_hmacsha256_init(&st, mac_key, DC_KDF_SUBKEYBYTES);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)root_mac_context,
                                  sizeof root_mac_context - 1);
    crypto_auth_hmacsha256_update(&st, volume_id, DC_CODEC_VOLUME_IDBYTES);
    crypto_auth_hmacsha256_update(&st, &s, 1);
    crypto_auth_hmacsha256_update(&st, fields, 32);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_memzero(&st, sizeof st);
}

void dc__root_encode(unsigned char *block, uint32_t block_size,
                     const dc__root *root, int slot,
                     const unsigned char *volume_id,
                     const unsigned char *mac_key) {
    dc__random_fill(block, block_size);
    dc__store_u64le(block, root->generation);
    dc__ref_encode(block + 8, &root->superblock);
    root_mac(block + 32, block, slot, volume_id, mac_key);
}

int dc__root_decode(const unsigned char *block, int slot,
                    const unsigned char *volume_id,
                    const unsigned char *mac_key, dc__root *root) {
    unsigned char mac[DC__MAC_BYTES];
    root_mac(mac, block, slot, volume_id, mac_key);
    int ok = sodium_memcmp(mac, block + 32, DC__MAC_BYTES) == 0;
    sodium_memzero(mac, sizeof mac);
    if (!ok)
        return DC_ERR_AUTH;
    root->generation = dc__load_u64le(block);
    dc__ref_decode(block + 8, &root->superblock);
    return DC_OK;
}

/* ---- inode records ---- */
/* 0 u8 type | 1 u8 extent format | 2 u8 inline count | 3 u8 0 |
 * 4 u32 mode | 8 u64 inode | 16 u64 size | 24 i64 mtime | 32 i64 ctime |
 * 40 u64 blocks | 48 tree ref[24] or inline count x (u64 chunk, extent[28])
 */

void dc__extent_encode(unsigned char *p, const dc__extent *e) {
    dc__ref_encode(p, &e->data);
    dc__store_u32le(p + DC__REF_BYTES, e->len);
}

int dc__extent_decode(const unsigned char *p, size_t len, dc__extent *e) {
    if (len != DC__EXTENT_VALUE_BYTES)
        return DC_ERR_CORRUPT;
    dc__ref_decode(p, &e->data);
    e->len = dc__load_u32le(p + DC__REF_BYTES);
    return DC_OK;
}

size_t dc__inode_encode(unsigned char *p, const dc__inode *ino) {
    p[0] = (unsigned char)ino->type;
    p[1] = (unsigned char)ino->extent_format;
    p[2] =
        (unsigned char)(ino->extent_format == DC__EXTENTS_INLINE ? ino->ninline
                                                                 : 0);
    p[3] = 0;
    dc__store_u32le(p + 4, ino->mode);
    dc__store_u64le(p + 8, ino->id);
    dc__store_u64le(p + 16, ino->size);
    dc__store_u64le(p + 24, (uint64_t)ino->mtime_ns);
    dc__store_u64le(p + 32, (uint64_t)ino->ctime_ns);
    dc__store_u64le(p + 40, ino->blocks);
    size_t n = DC__INODE_FIXED_BYTES;
    if (ino->extent_format == DC__EXTENTS_TREE) {
        dc__ref_encode(p + n, &ino->extent_root);
        n += DC__REF_BYTES;
    } else if (ino->extent_format == DC__EXTENTS_INLINE) {
        for (unsigned i = 0; i < ino->ninline; i++) {
            dc__store_u64le(p + n, ino->inline_chunk[i]);
            dc__extent_encode(p + n + 8, &ino->inline_ext[i]);
            n += 8 + DC__EXTENT_VALUE_BYTES;
        }
    }
    return n;
}

int dc__inode_decode(const unsigned char *p, size_t len, dc__inode *ino) {
    memset(ino, 0, sizeof *ino);
    if (len < DC__INODE_FIXED_BYTES)
        return DC_ERR_CORRUPT;
    ino->type = p[0];
    ino->extent_format = p[1];
    ino->ninline = p[2];
    ino->mode = dc__load_u32le(p + 4);
    ino->id = dc__load_u64le(p + 8);
    ino->size = dc__load_u64le(p + 16);
    ino->mtime_ns = (int64_t)dc__load_u64le(p + 24);
    ino->ctime_ns = (int64_t)dc__load_u64le(p + 32);
    ino->blocks = dc__load_u64le(p + 40);
    /* No size past INT64_MAX is ever written (dc_fs_write and
     * dc_fs_truncate stop there), and file offset arithmetic relies on it. */
    if ((ino->type != DC_TYPE_FILE && ino->type != DC_TYPE_DIRECTORY) ||
        p[3] != 0 || ino->size > (uint64_t)INT64_MAX)
        return DC_ERR_CORRUPT;
    size_t n = DC__INODE_FIXED_BYTES;
    switch (ino->extent_format) {
    case DC__EXTENTS_NONE:
        return len == n && ino->ninline == 0 ? DC_OK : DC_ERR_CORRUPT;
    case DC__EXTENTS_TREE:
        if (len != n + DC__REF_BYTES || ino->ninline != 0 ||
            ino->type != DC_TYPE_FILE)
            return DC_ERR_CORRUPT;
        dc__ref_decode(p + n, &ino->extent_root);
        return DC_OK;
    case DC__EXTENTS_INLINE:
        if (ino->ninline == 0 || ino->ninline > DC__INLINE_EXTENTS ||
            ino->type != DC_TYPE_FILE ||
            len != n + ino->ninline * (8 + DC__EXTENT_VALUE_BYTES))
            return DC_ERR_CORRUPT;
        for (unsigned i = 0; i < ino->ninline; i++) {
            ino->inline_chunk[i] = dc__load_u64le(p + n);
            dc__extent_decode(p + n + 8, DC__EXTENT_VALUE_BYTES,
                              &ino->inline_ext[i]);
            n += 8 + DC__EXTENT_VALUE_BYTES;
        }
        return DC_OK;
    default:
        return DC_ERR_CORRUPT;
    }
}

/* ---- superblock ---- */
/* 0 u64 generation | 8 namespace root ref[24] | 32 u64 next inode |
 * 40 u64 files | 48 u64 directories | 56 root directory inode record */

size_t dc__super_encode(unsigned char *p, const dc__super *sb) {
    dc__store_u64le(p, sb->generation);
    dc__ref_encode(p + 8, &sb->namespace_root);
    dc__store_u64le(p + 32, sb->next_inode);
    dc__store_u64le(p + 40, sb->files);
    dc__store_u64le(p + 48, sb->directories);
    return 56 + dc__inode_encode(p + 56, &sb->root_dir);
}

int dc__super_decode(const unsigned char *p, size_t len, dc__super *sb) {
    memset(sb, 0, sizeof *sb);
    if (len < 56 + DC__INODE_FIXED_BYTES)
        return DC_ERR_CORRUPT;
    sb->generation = dc__load_u64le(p);
    dc__ref_decode(p + 8, &sb->namespace_root);
    sb->next_inode = dc__load_u64le(p + 32);
    sb->files = dc__load_u64le(p + 40);
    sb->directories = dc__load_u64le(p + 48);
    int rc = dc__inode_decode(p + 56, len - 56, &sb->root_dir);
    if (rc != DC_OK || sb->root_dir.type != DC_TYPE_DIRECTORY)
        return DC_ERR_CORRUPT;
    /* Inode numbers handed out start after the root's (1); a smaller next
     * number would give a new entry the root's number. */
    if (sb->next_inode <= 1)
        return DC_ERR_CORRUPT;
    return DC_OK;
}
