/*
 * doublecrypt/codec.h - the AEAD block codec.
 *
 * Seals one object (superblock, inode, directory page, extent page, file
 * data, ...) into exactly one block of block_size bytes:
 *
 *   0   u32 LE  body length L (ciphertext + 16-byte tag)
 *   4   u8      object kind (1..255)
 *   5   u8      format version (DC_FORMAT_VERSION)
 *   6   u16     reserved, zero
 *   8   24      random XChaCha20-Poly1305 nonce
 *   32  L       ciphertext || tag
 *   32+L        random padding up to block_size
 *
 * The associated data binds the envelope to its place: volume id, block id,
 * and the 8 header bytes (length, kind, version, reserved). A block that is
 * altered, moved to another address or volume, or opened as another kind
 * fails with DC_ERR_AUTH and nothing else. docs/FORMAT.md is the spec.
 *
 * Thread safety: a dc_codec is immutable after creation and may be shared by
 * any number of threads. Batch calls spread their items over the codec's
 * worker threads; a batch issued while another thread's batch occupies the
 * workers runs on the calling thread instead of waiting.
 */
#ifndef DOUBLECRYPT_CODEC_H
#define DOUBLECRYPT_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "export.h"

DC_BEGIN_DECLS

/* @cdef-begin */
#define DC_FORMAT_VERSION 2
#define DC_CODEC_KEYBYTES 32
#define DC_CODEC_VOLUME_IDBYTES 16
#define DC_CODEC_NONCEBYTES 24
#define DC_CODEC_TAGBYTES 16
#define DC_CODEC_HEADERBYTES 32
/* Bytes of a block that are not plaintext: header + tag. */
#define DC_CODEC_OVERHEADBYTES 48
#define DC_MIN_BLOCK_SIZE 4096
#define DC_MAX_BLOCK_SIZE 1048576
#define DC_DEFAULT_BLOCK_SIZE 65536
#define DC_CODEC_MAX_THREADS 64

/* Object kinds. The codec accepts any kind 1..255; these are the engine's. */
#define DC_KIND_SUPERBLOCK 1
#define DC_KIND_INODE 2
#define DC_KIND_DIRECTORY 3
#define DC_KIND_EXTENT_MAP 4
#define DC_KIND_DATA 5

#define DC_CODEC_OPTIONS_VERSION 1

typedef struct dc_codec dc_codec;

typedef struct dc_codec_options {
    /* DC_CODEC_OPTIONS_VERSION */
    unsigned int version;
    /* A power of two, DC_MIN_BLOCK_SIZE..DC_MAX_BLOCK_SIZE. */
    uint32_t block_size;
    /* Threads for batch calls, the caller included: 0 = one per online CPU,
     * 1 = the caller only. */
    unsigned int threads;
} dc_codec_options;

DC_API size_t dc_codec_keybytes(void);
DC_API size_t dc_codec_volume_idbytes(void);
DC_API size_t dc_codec_noncebytes(void);
DC_API size_t dc_codec_tagbytes(void);
DC_API size_t dc_codec_headerbytes(void);
DC_API size_t dc_codec_overheadbytes(void);
DC_API size_t dc_min_block_size(void);
DC_API size_t dc_max_block_size(void);
DC_API size_t dc_default_block_size(void);
DC_API int dc_format_version(void);

/** Fill `opts` with defaults (64 KiB blocks, one thread per CPU). */
DC_API int dc_codec_options_init(dc_codec_options *opts);

/**
 * Create a codec for one volume. `key` is the DC_CODEC_KEYBYTES block
 * encryption key (see dc_kdf_derive_subkey), `volume_id` the volume's
 * DC_CODEC_VOLUME_IDBYTES identifier; both are copied (the key into locked,
 * wiped-on-free memory). `opts` may be NULL for defaults. Returns
 * DC_ERR_INVALID_ARGUMENT for a bad block size or NULL pointers,
 * DC_ERR_UNSUPPORTED for an unknown options version, DC_ERR_NO_MEMORY.
 */
DC_API int dc_codec_new(dc_codec **out, const unsigned char *key,
                        const unsigned char *volume_id,
                        const dc_codec_options *opts);

/** Wipe the key and release the codec and its threads. NULL is a no-op. */
DC_API void dc_codec_free(dc_codec *codec);

DC_API uint32_t dc_codec_block_size(const dc_codec *codec);
/** The largest plaintext a block holds: block_size - DC_CODEC_OVERHEADBYTES. */
DC_API size_t dc_codec_max_plaintext(const dc_codec *codec);
/** Threads a batch call uses, the caller included. */
DC_API unsigned int dc_codec_threads(const dc_codec *codec);

/**
 * Seal `plaintext` as object `kind` for block `block_id` into `block_out`
 * (block_size bytes). `plaintext` may be NULL when plaintext_len is 0.
 * Returns DC_ERR_INVALID_ARGUMENT for NULL pointers, kind 0 or > 255, or a
 * plaintext longer than dc_codec_max_plaintext.
 */
DC_API int dc_codec_seal(dc_codec *codec, unsigned char *block_out,
                         uint64_t block_id, unsigned int kind,
                         const unsigned char *plaintext, size_t plaintext_len);

/**
 * Open the block_size bytes of `block`, expected to hold object `kind` of
 * block `block_id`. On entry *plaintext_len is the capacity of
 * `plaintext_out`; on success it is the plaintext length. Returns DC_ERR_AUTH
 * if anything about the envelope is wrong (key, volume, block id, kind, any
 * altered byte), DC_ERR_BUFFER_TOO_SMALL (with the required length in
 * *plaintext_len) if an authentic-looking envelope does not fit; a capacity
 * of dc_codec_max_plaintext always fits.
 */
DC_API DC_NODISCARD int dc_codec_open(dc_codec *codec,
                                      unsigned char *plaintext_out,
                                      size_t *plaintext_len, uint64_t block_id,
                                      unsigned int kind,
                                      const unsigned char *block);

/**
 * Seal `count` objects at once on the codec's threads. Item i is sealed from
 * plaintexts[i] (plaintext_lens[i] bytes) as kind kinds[i] for block
 * block_ids[i] into blocks_out + i * block_size. Returns DC_OK when every item
 * was sealed, else the status of the first failing item (nothing is
 * guaranteed about the output of a failed batch).
 */
DC_API int dc_codec_seal_batch(dc_codec *codec, unsigned char *blocks_out,
                               size_t count, const uint64_t *block_ids,
                               const unsigned char *kinds,
                               const unsigned char *const *plaintexts,
                               const size_t *plaintext_lens);

/**
 * Open `count` blocks at once on the codec's threads. Block i is read from
 * blocks + i * block_size and its plaintext written to
 * plaintexts_out + i * plaintext_stride (capacity plaintext_stride), its
 * length to plaintext_lens[i] and, when `statuses` is not NULL, its own
 * status to statuses[i]. Returns DC_OK when every item opened, else the
 * status of the first failing item.
 */
DC_API DC_NODISCARD int
dc_codec_open_batch(dc_codec *codec, unsigned char *plaintexts_out,
                    size_t plaintext_stride, size_t *plaintext_lens,
                    int *statuses, size_t count, const uint64_t *block_ids,
                    const unsigned char *kinds, const unsigned char *blocks);

/**
 * Fill `buf` with `len` cryptographically random bytes from a ChaCha20
 * keystream seeded once from the system RNG (reseeded after fork). Many
 * times faster than randombytes_buf for bulk data such as padding and the
 * initial fill of new images. Thread-safe.
 */
DC_API int dc_random_fill(unsigned char *buf, size_t len);
/* @cdef-end */

DC_END_DECLS

#endif /* DOUBLECRYPT_CODEC_H */
