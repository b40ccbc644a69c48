#include <string.h>

#include "doublecrypt.h"
#include "unit.h"

static void unhex(unsigned char *out, const char *hex) {
    for (size_t i = 0; hex[2 * i]; i++) {
        unsigned int v;
        sscanf(hex + 2 * i, "%2x", &v);
        out[i] = (unsigned char)v;
    }
}

void test_kdf(void) {
    /* RFC 5869, test cases 1 and 3. */
    unsigned char ikm[22], salt[13], info[10], okm[42], expected[42];
    memset(ikm, 0x0b, sizeof ikm);
    for (unsigned i = 0; i < sizeof salt; i++)
        salt[i] = (unsigned char)i;
    for (unsigned i = 0; i < sizeof info; i++)
        info[i] = (unsigned char)(0xf0 + i);
    CHECK_RC(dc_kdf_hkdf_sha256(okm, sizeof okm, salt, sizeof salt, ikm,
                                sizeof ikm, info, sizeof info),
             DC_OK);
    unhex(expected, "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db0"
                    "2d56ecc4c5bf34007208d5b887185865");
    CHECK(memcmp(okm, expected, sizeof okm) == 0);

    CHECK_RC(
        dc_kdf_hkdf_sha256(okm, sizeof okm, NULL, 0, ikm, sizeof ikm, NULL, 0),
        DC_OK);
    unhex(expected, "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec345"
                    "4e5f3c738d2d9d201395faa4b61a96c8");
    CHECK(memcmp(okm, expected, sizeof okm) == 0);

    CHECK_RC(dc_kdf_hkdf_sha256(NULL, 1, NULL, 0, ikm, 1, NULL, 0),
             DC_ERR_INVALID_ARGUMENT);
    CHECK_RC(dc_kdf_hkdf_sha256(okm, 0, NULL, 0, ikm, 1, NULL, 0),
             DC_ERR_INVALID_ARGUMENT);
    CHECK_RC(dc_kdf_hkdf_sha256(okm, 1, NULL, 3, ikm, 1, NULL, 0),
             DC_ERR_INVALID_ARGUMENT);

    /* Sub-keys differ per purpose; unknown purposes are refused. */
    unsigned char master[DC_KDF_MASTER_KEYBYTES] = {1};
    unsigned char a[DC_KDF_SUBKEYBYTES], b[DC_KDF_SUBKEYBYTES];
    CHECK_RC(dc_kdf_derive_subkey(a, DC_SUBKEY_BLOCK_ENCRYPTION, master),
             DC_OK);
    CHECK_RC(dc_kdf_derive_subkey(b, DC_SUBKEY_ROOT_MAC, master), DC_OK);
    CHECK(memcmp(a, b, sizeof a) != 0);
    CHECK_RC(dc_kdf_derive_subkey(a, 0, master), DC_ERR_INVALID_ARGUMENT);
    CHECK_RC(dc_kdf_derive_subkey(a, DC_SUBKEY_ROOT_MAC, NULL),
             DC_ERR_INVALID_ARGUMENT);
    CHECK(dc_kdf_subkey_label(99) == NULL);
    CHECK(strcmp(dc_kdf_subkey_label(DC_SUBKEY_SERVER_AUTH),
                 "server-auth-token") == 0);
}
