/* fuzz.h - what the libFuzzer targets share (tests/fuzz/, docs/FUZZING.md).
 * A target that reaches a parser kept static in its module includes that
 * module's .c file: the parser is fuzzed as built, with no test-only
 * export in the library. */
#ifndef MFS_FUZZ_H
#define MFS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* data as a NUL-terminated string, malloc'd (NULL on no memory). */
static inline char *fuzz_str(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (s) {
		memcpy(s, data, size);
		s[size] = '\0';
	}
	return s;
}

#endif
