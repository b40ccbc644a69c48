/*
 * fuzz_common.h - what the fuzz targets share: the fixed keys
 * (tests/fuzz/make_corpus.py uses the same ones to build the seed corpus), a
 * check that aborts (a finding under libFuzzer and under the regression
 * driver), and a reader for structured inputs.
 *
 * Each target is one tests/fuzz/fuzz_*.c defining LLVMFuzzerTestOneInput; it
 * is linked with libFuzzer by `make fuzz` and with regression_driver.c by
 * `make fuzz-regress`. docs/RELIABILITY.md ("Fuzzing") describes both.
 */
#ifndef DC_FUZZ_COMMON_H
#define DC_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doublecrypt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An invariant the engine must keep whatever the input: abort, so libFuzzer
 * saves the input as a crash and the regression driver fails. */
#define FUZZ_CHECK(cond)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__,    \
                    __LINE__, #cond);                                          \
            abort();                                                           \
        }                                                                      \
    } while (0)

/* The master key of every volume the targets build: bytes 0x00..0x1f. */
static inline void fuzz_master_key(unsigned char key[DC_KDF_MASTER_KEYBYTES]) {
    for (int i = 0; i < DC_KDF_MASTER_KEYBYTES; i++)
        key[i] = (unsigned char)i;
}

/* The volume id of the codecs and volumes the targets build: 0x40..0x4f. */
static inline void fuzz_volume_id(unsigned char id[DC_CODEC_VOLUME_IDBYTES]) {
    for (int i = 0; i < DC_CODEC_VOLUME_IDBYTES; i++)
        id[i] = (unsigned char)(0x40 + i);
}

/* A sub-key of the fixed master key. */
static inline void fuzz_subkey(unsigned char out[DC_KDF_SUBKEYBYTES],
                               int purpose) {
    unsigned char master[DC_KDF_MASTER_KEYBYTES];
    fuzz_master_key(master);
    FUZZ_CHECK(dc_kdf_derive_subkey(out, purpose, master) == DC_OK);
}

/* A heap copy of exactly `size` bytes, so AddressSanitizer sees any read
 * past the end of what a decoder was given. */
static inline unsigned char *fuzz_dup(const uint8_t *data, size_t size) {
    unsigned char *p = malloc(size ? size : 1);
    FUZZ_CHECK(p != NULL);
    if (size)
        memcpy(p, data, size);
    return p;
}

/* Structured input: fields taken from the front, zeros past the end. */
typedef struct fuzz_in {
    const uint8_t *p;
    size_t left;
} fuzz_in;

static inline uint8_t fuzz_u8(fuzz_in *in) {
    if (in->left == 0)
        return 0;
    in->left--;
    return *in->p++;
}

static inline uint16_t fuzz_u16(fuzz_in *in) {
    uint16_t lo = fuzz_u8(in);
    return (uint16_t)(lo | (uint16_t)fuzz_u8(in) << 8);
}

static inline uint32_t fuzz_u32(fuzz_in *in) {
    uint32_t lo = fuzz_u16(in);
    return lo | (uint32_t)fuzz_u16(in) << 16;
}

static inline uint64_t fuzz_u64(fuzz_in *in) {
    uint64_t lo = fuzz_u32(in);
    return lo | (uint64_t)fuzz_u32(in) << 32;
}

/* Up to n bytes into out (the rest zero); returns how many were there. */
static inline size_t fuzz_bytes(fuzz_in *in, unsigned char *out, size_t n) {
    size_t take = n < in->left ? n : in->left;
    if (take)
        memcpy(out, in->p, take);
    if (n > take)
        memset(out + take, 0, n - take);
    in->p += take;
    in->left -= take;
    return take;
}

#endif /* DC_FUZZ_COMMON_H */
