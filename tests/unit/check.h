/* A minimal TAP producer for unit tests: one "ok N - name" or "not ok N - name" line per check,
 * so tests/run-tests can add up every test binary into one summary. */
#pragma once
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int check_count, check_failed;

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		check_count++;                                                                     \
		if (cond) {                                                                        \
			printf("ok %d - ", check_count);                                          \
		} else {                                                                           \
			check_failed++;                                                            \
			printf("not ok %d - %s:%d: (%s) ", check_count, __FILE__, __LINE__, #cond); \
		}                                                                                  \
		printf(__VA_ARGS__);                                                               \
		putchar('\n');                                                                     \
	} while (0)

#define CHECK_STR(a, b, name)                                                                      \
	do {                                                                                       \
		const char *check_a_ = (a), *check_b_ = (b);                                      \
		CHECK(check_a_ && check_b_ && strcmp(check_a_, check_b_) == 0,                     \
		      "%s: got \"%s\", want \"%s\"", name, check_a_ ? check_a_ : "(null)",         \
		      check_b_ ? check_b_ : "(null)");                                             \
	} while (0)

#define CHECK_U64(a, b, name)                                                                      \
	do {                                                                                       \
		uint64_t check_a_ = (uint64_t)(a), check_b_ = (uint64_t)(b);                       \
		CHECK(check_a_ == check_b_, "%s: got %" PRIu64 ", want %" PRIu64, name, check_a_,  \
		      check_b_);                                                                   \
	} while (0)

static inline int check_done(void)
{
	printf("1..%d\n", check_count);
	return check_failed ? 1 : 0;
}
