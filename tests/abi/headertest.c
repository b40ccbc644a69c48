/* Compiled as strict C99 and as C++ by tests/abi/test_abi.py: the public
 * header must be usable from both with every warning enabled. */
#include "doublecrypt.h"

int main(void) {
    dc_codec_options opts;
    return dc_codec_options_init(&opts) == DC_OK ? 0 : 1;
}
