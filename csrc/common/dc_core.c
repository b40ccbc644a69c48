#define _POSIX_C_SOURCE 200809L /* posix_memalign */

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "internal.h"

int dc_init(void) { return sodium_init() < 0 ? DC_ERR_INTERNAL : DC_OK; }

void dc_free(void *ptr) { free(ptr); }

void *dc__aligned_alloc(size_t size) {
    void *ptr = NULL;
    if (size == 0)
        size = 1;
    if (posix_memalign(&ptr, DC__BUFFER_ALIGN, size) != 0)
        return NULL;
    memset(ptr, 0, size);
    return ptr;
}

void dc__aligned_free(void *ptr) { free(ptr); }
