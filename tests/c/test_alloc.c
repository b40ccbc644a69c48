#include <stdint.h>

#include "doublecrypt.h"
#include "unit.h"

void test_alloc(void) {
    dc_allocator *a = NULL;
    uint64_t b, first;
    CHECK_RC(dc_allocator_new(&a, DC_FIRST_DATA_BLOCK),
             DC_ERR_INVALID_ARGUMENT);
    CHECK_RC(dc_allocator_new(&a, 200), DC_OK);
    CHECK(dc_allocator_free_blocks(a) == 197);
    CHECK(dc_allocator_is_used(a, 0) && dc_allocator_is_used(a, 2));

    CHECK_RC(dc_allocator_alloc(a, &b), DC_OK);
    CHECK(b == DC_FIRST_DATA_BLOCK);
    CHECK_RC(dc_allocator_release(a, 0), DC_ERR_INVALID_ARGUMENT);
    CHECK_RC(dc_allocator_release(a, 200), DC_ERR_INVALID_ARGUMENT);
    CHECK_RC(dc_allocator_release(a, 50), DC_ERR_INVALID_ARGUMENT);

    /* Deferred frees are not reusable before the durable commit. */
    CHECK_RC(dc_allocator_release_deferred(a, b), DC_OK);
    CHECK_RC(dc_allocator_release_deferred(a, b), DC_ERR_INVALID_ARGUMENT);
    CHECK(dc_allocator_is_used(a, b));
    CHECK(dc_allocator_deferred_blocks(a) == 1);
    dc_allocator_abort_deferred(a);
    CHECK(dc_allocator_is_used(a, b) && dc_allocator_deferred_blocks(a) == 0);
    CHECK_RC(dc_allocator_release_deferred(a, b), DC_OK);
    dc_allocator_commit_durable(a);
    CHECK(!dc_allocator_is_used(a, b));
    CHECK(dc_allocator_free_blocks(a) == 197);

    /* Runs continue from the cursor (4): 4..103, leaving 3 and 104..199. */
    CHECK_RC(dc_allocator_alloc_run(a, &first, 100), DC_OK);
    CHECK(first == 4);
    CHECK_RC(dc_allocator_alloc_run(a, &first, 97), DC_ERR_NO_SPACE);
    CHECK_RC(dc_allocator_alloc_run(a, &first, 96), DC_OK);
    CHECK(first == 104);
    CHECK_RC(dc_allocator_alloc(a, &b), DC_OK);
    CHECK(b == 3 && dc_allocator_free_blocks(a) == 0);
    CHECK_RC(dc_allocator_alloc(a, &b), DC_ERR_NO_SPACE);
    CHECK_RC(dc_allocator_alloc_run(a, &first, 0), DC_ERR_INVALID_ARGUMENT);

    uint64_t keep[] = {10, 11, 10, 150};
    CHECK_RC(dc_allocator_rebuild(a, keep, 4), DC_OK);
    CHECK(dc_allocator_free_blocks(a) == 194);
    uint64_t bad[] = {1};
    CHECK_RC(dc_allocator_rebuild(a, bad, 1), DC_ERR_INVALID_ARGUMENT);
    CHECK(dc_allocator_free_blocks(a) == 194);
    CHECK_RC(dc_allocator_mark_used(a, 10), DC_ERR_ALREADY_EXISTS);
    CHECK_RC(dc_allocator_mark_used(a, 12), DC_OK);
    /* 3..9 holds a run of 7 but not 8: the run of 8 skips to 13. */
    CHECK_RC(dc_allocator_alloc_run(a, &first, 8), DC_OK);
    CHECK(first == 13);
    CHECK_RC(dc_allocator_alloc_run(a, &first, 7), DC_OK);
    CHECK(first == 21);
    CHECK_RC(dc_allocator_alloc_run(a, &first, 180), DC_ERR_NO_SPACE);
    dc_allocator_free(a);
    dc_allocator_free(NULL);
}
