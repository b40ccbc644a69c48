/*
 * regression_driver.c - a main() for a fuzz target without libFuzzer: runs
 * LLVMFuzzerTestOneInput once on an empty input and then on every file
 * named on the command line, or found (in name order) in a directory named
 * there. `make fuzz-regress` links it with each target, under
 * AddressSanitizer and UndefinedBehaviorSanitizer, and runs it over
 * tests/fuzz/corpus/<target>/. A target aborts on any broken invariant, so
 * exit status 0 means every input passed.
 */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        return -1;
    }
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap);
    for (;;) {
        if (buf == NULL) {
            fclose(f);
            fprintf(stderr, "%s: out of memory\n", path);
            return -1;
        }
        len += fread(buf + len, 1, cap - len, f);
        if (len < cap)
            break;
        cap *= 2;
        buf = realloc(buf, cap);
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        fprintf(stderr, "%s: read error\n", path);
        return -1;
    }
    /* An exact-size copy, so reads past the input are caught. */
    uint8_t *input = malloc(len ? len : 1);
    if (input == NULL) {
        free(buf);
        return -1;
    }
    memcpy(input, buf, len);
    free(buf);
    LLVMFuzzerTestOneInput(input, len);
    free(input);
    return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b) {
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int regular(const struct dirent *e) { return e->d_name[0] != '.'; }

int main(int argc, char **argv) {
    long inputs = 0;
    int failed = 0;
    LLVMFuzzerTestOneInput((const uint8_t *)"", 0);
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            perror(argv[i]);
            failed = 1;
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            failed |= run_file(argv[i]) != 0;
            inputs++;
            continue;
        }
        struct dirent **names;
        int n = scandir(argv[i], &names, regular, by_name);
        if (n < 0) {
            perror(argv[i]);
            failed = 1;
            continue;
        }
        for (int k = 0; k < n; k++) {
            size_t plen = strlen(argv[i]) + strlen(names[k]->d_name) + 2;
            char *path = malloc(plen);
            if (path == NULL)
                return 1;
            snprintf(path, plen, "%s/%s", argv[i], names[k]->d_name);
            if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
                failed |= run_file(path) != 0;
                inputs++;
            }
            free(path);
            free(names[k]);
        }
        free(names);
    }
    printf("%s: %ld inputs %s\n", argv[0], inputs,
           failed ? "run, some unreadable" : "passed");
    if (inputs == 0) {
        fprintf(stderr, "%s: no inputs (is the corpus missing?)\n", argv[0]);
        return 1;
    }
    return failed;
}
