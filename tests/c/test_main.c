#include "doublecrypt.h"
#include "unit.h"

int unit_failures = 0;

int main(void) {
    CHECK_RC(dc_init(), DC_OK);
    test_kdf();
    test_codec();
    test_alloc();
    test_fs();
    test_store();
    test_fault();
    test_bad_input();
    if (unit_failures) {
        fprintf(stderr, "%d C unit check(s) failed\n", unit_failures);
        return 1;
    }
    printf("C unit tests: 7 passed, 0 failed\n");
    return 0;
}
