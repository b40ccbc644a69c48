/* unit.h - a minimal test harness for the C unit tests (run under ASan and
 * UBSan by `make ctest`). */
#ifndef DC_UNIT_H
#define DC_UNIT_H

#include <stdio.h>
#include <stdlib.h>

extern int unit_failures;

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__,   \
                    #cond);                                                    \
            unit_failures++;                                                   \
        }                                                                      \
    } while (0)

#define CHECK_RC(expr, expected)                                               \
    do {                                                                       \
        int rc_ = (expr);                                                      \
        if (rc_ != (expected)) {                                               \
            fprintf(stderr, "%s:%d: %s returned %d, expected %d\n", __FILE__,  \
                    __LINE__, #expr, rc_, (int)(expected));                    \
            unit_failures++;                                                   \
        }                                                                      \
    } while (0)

void test_kdf(void);
void test_codec(void);
void test_alloc(void);
void test_fs(void);
void test_store(void);
void test_fault(void);
void test_bad_input(void);

#endif
