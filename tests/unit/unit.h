/* unit.h - a minimal table-friendly test harness. Each CHECK counts one
 * assertion; TEST_MAIN prints "NAME: N passed, N failed" and exits non-zero
 * on any failure. */
#ifndef MFS_TESTS_UNIT_H
#define MFS_TESTS_UNIT_H

#include <stdio.h>
#include <string.h>

static int unit_pass, unit_fail;
static const char *unit_case = "";

#define CASE(name) (unit_case = (name))

#define CHECK(cond)                                                         \
	do {                                                                \
		if (cond) {                                                 \
			unit_pass++;                                        \
		} else {                                                    \
			unit_fail++;                                        \
			printf("FAIL: %s: %s:%d: %s\n", unit_case, __FILE__,  \
			       __LINE__, #cond);                            \
		}                                                           \
	} while (0)

#define CHECK_STR(a, b)                                                     \
	do {                                                                \
		const char *a_ = (a), *b_ = (b);                            \
		if (a_ && b_ && !strcmp(a_, b_)) {                          \
			unit_pass++;                                        \
		} else {                                                    \
			unit_fail++;                                        \
			printf("FAIL: %s: %s:%d: %s\n  got:  '%s'\n  want: '%s'\n", \
			       unit_case, __FILE__, __LINE__, #a,           \
			       a_ ? a_ : "(null)", b_ ? b_ : "(null)");     \
		}                                                           \
	} while (0)

#define CHECK_HAS(hay, needle)                                              \
	do {                                                                \
		const char *h_ = (hay), *n_ = (needle);                     \
		if (h_ && strstr(h_, n_)) {                                 \
			unit_pass++;                                        \
		} else {                                                    \
			unit_fail++;                                        \
			printf("FAIL: %s: %s:%d: '%s' lacks '%s'\n",        \
			       unit_case, __FILE__, __LINE__,               \
			       h_ ? h_ : "(null)", n_);                     \
		}                                                           \
	} while (0)

#define TEST_MAIN(name)                                                     \
	static int unit_report(void)                                        \
	{                                                                   \
		printf("%s: %d passed, %d failed\n", name, unit_pass,       \
		       unit_fail);                                          \
		return unit_fail ? 1 : 0;                                   \
	}

#endif
