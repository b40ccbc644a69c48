#include "internal.h"

const char *dc_version_string(void) { return DC_VERSION_STRING; }

int dc_version_number(void) { return DC_VERSION_NUMBER; }

int dc_abi_version(void) { return DC_ABI_VERSION; }
