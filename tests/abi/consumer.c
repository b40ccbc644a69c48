/* A program built the way a C, Swift or Kotlin/JNI consumer builds:
 * `cc consumer.c $(pkg-config --cflags --libs doublecrypt)` against the shared
 * library. It derives a block key, seals a block and opens it again. */
#include <stdio.h>
#include <string.h>

#include <doublecrypt.h>

int main(void) {
    unsigned char master[DC_KDF_MASTER_KEYBYTES], key[DC_KDF_SUBKEYBYTES];
    unsigned char volume[DC_CODEC_VOLUME_IDBYTES] = {0};
    static unsigned char block[DC_DEFAULT_BLOCK_SIZE];
    static unsigned char plain[DC_DEFAULT_BLOCK_SIZE];
    const char msg[] = "sealed through libdoublecrypt.so";
    dc_codec *codec = NULL;
    size_t len = sizeof plain;
    int rc;

    memset(master, 0x42, sizeof master);
    if ((rc = dc_init()) != DC_OK ||
        (rc = dc_kdf_derive_subkey(key, DC_SUBKEY_BLOCK_ENCRYPTION, master)) !=
            DC_OK ||
        (rc = dc_codec_new(&codec, key, volume, NULL)) != DC_OK ||
        (rc = dc_codec_seal(codec, block, 3, DC_KIND_DATA,
                            (const unsigned char *)msg, sizeof msg)) != DC_OK ||
        (rc = dc_codec_open(codec, plain, &len, 3, DC_KIND_DATA, block)) !=
            DC_OK) {
        fprintf(stderr, "failed: %s\n", dc_strerror(rc));
        dc_codec_free(codec);
        return 1;
    }
    block[40] ^= 1;
    len = sizeof plain;
    rc = dc_codec_open(codec, plain, &len, 3, DC_KIND_DATA, block);
    dc_codec_free(codec);
    if (rc != DC_ERR_AUTH) {
        fprintf(stderr, "tampering not detected\n");
        return 1;
    }
    printf("%s %s\n", dc_version_string(), msg);
    return 0;
}
