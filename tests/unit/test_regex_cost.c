/* Unit tests of src/regex_cost.c: the estimate for each construct, the cap, and what real configs
 * use against what glibc's regcomp() cannot compile in reasonable time and memory. */
#include "check.h"
#include "regex_cost.h"

#define OVER (REGEX_COST_MAX + 1)

static void test_exact_costs(void)
{
	static const struct {
		const char *re;
		size_t cost;
	} cases[] = {
		{ "", 0 },
		{ "^$|", 0 },		      /* anchors and alternation cost nothing */
		{ "a", 1 },
		{ "abc", 3 },
		{ "\\.\\*", 2 },	      /* an escaped character is one atom */
		{ "a*", 2 },
		{ "a?", 2 },
		{ "a+", 4 },
		{ "a**", 2 },		      /* a star on a star adds nothing */
		{ "a*?", 2 },
		{ "a*+", 8 },		      /* a plus on a star does */
		{ "(ab)", 3 },		      /* a group: its contents plus 1 */
		{ "(ab){3}", 9 },
		{ "a{2,5}", 5 },	      /* the larger count */
		{ "a{5,2}", 5 },
		{ "a{3,}", 4 },		      /* open: one more copy */
		{ "a{0}", 1 },
		{ "a{", 2 },		      /* not a count: two atoms */
		{ "a{1", 3 },
		{ "[]a]", 1 },		      /* bracket expressions are one atom, ']' first included */
		{ "[^]a]*", 2 },
		{ "[[:alpha:]]+", 4 },
		{ "[[.-.]x]", 1 },
		{ "(a", 1 },		      /* unbalanced: counted all the same */
		{ "^/(usr|bin|sbin|lib[^/]*|opt)/", 21 }, /* the shipped include */
		{ "x*{2}", OVER },	      /* a count on a repeated atom: refused outright */
		{ "(a{1000}){1000}", OVER },  /* capped, not overflowed */
		{ "a{99999999999999999999999}", OVER },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		CHECK_U64(regex_cost(cases[i].re), cases[i].cost, cases[i].re);
}

static void test_limits(void)
{
	static const char *const ok[] = {
		"^/(usr|bin|sbin|lib[^/]*|opt)/", "[]+]+\\.so", "[^]a]*x", "[[:alpha:]+]+$",
		"a\\+\\+\\+\\+\\+\\+\\+\\+\\+\\+\\+\\+\\+\\+\\+\\+\\+\\+\\+\\+\\+\\+",
		"[+++++++++++++++++++++++]", "a**********************", "(a{255}){255}", "a{1,}b{3,5}",
		"^/usr/lib/(x86_64-linux-gnu/)?lib(c|m|pthread)\\.so.*$",
	};
	static const char *const bad[] = {
		"x++++++++++++++++++++++", "(a{1000}){1000}", "((a+)+){60000}",
		"a{2}{2}{2}{2}{2}{2}{2}{2}{2}{2}{2}{2}{2}{2}{2}{2}{2}", "((a{50001}{2}",
		"a*++++++++++++", "((((((((((((a*)+)+)+)+)+)+)+)+)+)+)+)+", "x****{1000}",
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		CHECK(regex_cost(ok[i]) <= REGEX_COST_MAX, "'%s' is within the limit (cost %zu)", ok[i],
		      regex_cost(ok[i]));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(regex_cost(bad[i]) == OVER, "'%s' is over the limit (cost %zu)", bad[i],
		      regex_cost(bad[i]));
}

/* Deeper than the nesting the estimate follows (256): still costed, and no stack overrun. */
static void test_deep_nesting(void)
{
	static char re[300 + 1 + 2 * 300 + 1];
	size_t n = 0;

	for (int i = 0; i < 300; i++)
		re[n++] = '(';
	re[n++] = 'a';
	for (int i = 0; i < 300; i++)
		re[n++] = ')';
	re[n] = '\0';
	CHECK(regex_cost(re) >= 256, "300 nested groups cost at least one per group (cost %zu)",
	      regex_cost(re));
	for (const char *op = "+?"; *op; op++) {
		n = 301;
		for (int i = 0; i < 300; i++) {
			re[n++] = ')';
			re[n++] = *op;
		}
		re[n] = '\0';
		CHECK(regex_cost(re) == OVER, "300 nested groups, each under '%c', are over the limit",
		      *op);
	}
}

int main(void)
{
	test_exact_costs();
	test_limits();
	test_deep_nesting();
	return check_done();
}
