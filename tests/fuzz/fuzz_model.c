/*
 * fuzz_model - the decoders of what sealed blocks hold: inode records
 * (dc__inode_decode), extent values (dc__extent_decode), superblocks
 * (dc__super_decode) and B+tree nodes (dc__bt_check_node, which runs the
 * tree's own decode_node/parse_entry).
 *
 * Input: byte 0 picks the decoder (mod 4: inode, extent, superblock, node);
 * the rest is the record, handed over with its exact length. The encodings
 * are canonical, so whatever decodes must encode back to the same bytes (for
 * nodes, dc__bt_check_node checks that itself).
 */
#include "fs/engine.h"
#include "fuzz_common.h"

static void inode(const unsigned char *p, size_t len) {
    dc__inode ino;
    unsigned char out[DC__INODE_MAX_BYTES];
    int rc = dc__inode_decode(p, len, &ino);
    FUZZ_CHECK(rc == DC_OK || rc == DC_ERR_CORRUPT);
    if (rc != DC_OK)
        return;
    FUZZ_CHECK(ino.type == DC_TYPE_FILE || ino.type == DC_TYPE_DIRECTORY);
    FUZZ_CHECK(ino.extent_format != DC__EXTENTS_INLINE ||
               (ino.ninline >= 1 && ino.ninline <= DC__INLINE_EXTENTS));
    FUZZ_CHECK(len <= sizeof out);
    FUZZ_CHECK(dc__inode_encode(out, &ino) == len);
    FUZZ_CHECK(memcmp(out, p, len) == 0);
}

static void extent(const unsigned char *p, size_t len) {
    dc__extent e;
    unsigned char out[DC__EXTENT_VALUE_BYTES];
    int rc = dc__extent_decode(p, len, &e);
    FUZZ_CHECK(rc == DC_OK || rc == DC_ERR_CORRUPT);
    FUZZ_CHECK((rc == DC_OK) == (len == DC__EXTENT_VALUE_BYTES));
    if (rc != DC_OK)
        return;
    dc__extent_encode(out, &e);
    FUZZ_CHECK(memcmp(out, p, len) == 0);
}

static void super(const unsigned char *p, size_t len) {
    dc__super sb;
    unsigned char out[56 + DC__INODE_MAX_BYTES];
    int rc = dc__super_decode(p, len, &sb);
    FUZZ_CHECK(rc == DC_OK || rc == DC_ERR_CORRUPT);
    if (rc != DC_OK)
        return;
    FUZZ_CHECK(sb.root_dir.type == DC_TYPE_DIRECTORY);
    FUZZ_CHECK(len <= sizeof out);
    FUZZ_CHECK(dc__super_encode(out, &sb) == len);
    FUZZ_CHECK(memcmp(out, p, len) == 0);
}

static void node(const unsigned char *p, size_t len) {
    int rc = dc__bt_check_node(p, len);
    /* DC_ERR_INTERNAL: decoded, but encodes differently. */
    FUZZ_CHECK(rc == DC_OK || rc == DC_ERR_CORRUPT);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0)
        return 0;
    unsigned char *p = fuzz_dup(data + 1, size - 1);
    switch (data[0] % 4) {
    case 0:
        inode(p, size - 1);
        break;
    case 1:
        extent(p, size - 1);
        break;
    case 2:
        super(p, size - 1);
        break;
    default:
        node(p, size - 1);
        break;
    }
    free(p);
    return 0;
}
