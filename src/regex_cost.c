/* The regex cost guard (see regex_cost.h).
 *
 * glibc's regcomp() copies a repeated subexpression once per repetition, and copies of copies
 * multiply: "x" followed by 22 '+' takes 3 GiB, "(a{1000}){1000}" 200 MiB, and prelockd runs with
 * its memory locked. So the size is estimated first: every atom costs 1, a group costs its contents
 * plus 1, and each repetition operator multiplies what it applies to ('*' and '?' by 2, '+' by 4,
 * {m,n} by max(m,n), {m,} by m + 1). The factors of '*', '?' and '+' are not copy counts but what
 * was measured: repeats of repeats ('a*+++', '((a*)+)+') grow faster than the count alone suggests
 * (12 of them took over 2 s and hundreds of MiB). */
#include "regex_cost.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>

/* Deeper groups are costed as plain characters; regcomp() has its own limit. */
#define REGEX_NEST_MAX 256

static size_t cost_mul(size_t a, size_t b)
{
	return b != 0 && a > (REGEX_COST_MAX + 1) / b ? REGEX_COST_MAX + 1 : a * b;
}

static size_t cost_add(size_t a, size_t b)
{
	return a + b > REGEX_COST_MAX ? REGEX_COST_MAX + 1 : a + b;
}

/* Past a bracket expression starting at p ('['): "[]a]", "[^]a]", "[[:alpha:]]" and the like. */
static const char *skip_bracket(const char *p)
{
	p++;
	if (*p == '^')
		p++;
	if (*p == ']')
		p++;
	for (; *p && *p != ']'; p++) {
		if (*p == '[' && (p[1] == ':' || p[1] == '=' || p[1] == '.')) {
			const char *end = strchr(p + 2, p[1]);

			while (end && end[1] != ']')
				end = strchr(end + 1, p[1]);
			if (!end)
				return p + strlen(p); /* unterminated: regcomp() reports it */
			p = end + 1;
		}
	}
	return *p ? p + 1 : p;
}

static size_t parse_count(const char **p)
{
	size_t n = 0;

	for (; isdigit((unsigned char)**p); (*p)++)
		n = cost_add(cost_mul(n, 10), (size_t)(**p - '0'));
	return n;
}

/* The factor of the repetition operator at *p, 0 if there is none; advances *p past it. */
static size_t repetition(const char **p)
{
	const char *q = *p;
	size_t lo, hi;

	if (*q == '*' || *q == '?' || *q == '+') {
		*p = q + 1;
		return *q == '+' ? 4 : 2;
	}
	if (*q != '{' || !isdigit((unsigned char)q[1]))
		return 0;
	q++;
	lo = hi = parse_count(&q);
	if (*q == ',') {
		q++;
		/* {m,}: one more copy */
		hi = isdigit((unsigned char)*q) ? parse_count(&q) : lo + 1;
	}
	if (*q != '}')
		return 0;
	*p = q + 1;
	hi = hi > lo ? hi : lo;
	return hi ? hi : 1;
}

size_t regex_cost(const char *p)
{
	size_t stack[REGEX_NEST_MAX] = { 0 }, depth = 0, atom, f;

	while (*p) {
		if (*p == '(' && depth + 1 < REGEX_NEST_MAX) {
			stack[++depth] = 0;
			p++;
			continue;
		}
		if (*p == '|' || *p == '^' || *p == '$') {
			p++;
			continue;
		}
		if (*p == ')' && depth > 0) {
			atom = cost_add(stack[depth--], 1);
			p++;
		} else {
			p = *p == '[' ? skip_bracket(p) : p + (*p == '\\' && p[1] ? 2 : 1);
			atom = 1;
		}
		/* A '*' or '?' on something already repeated adds nothing ('a**' is 'a*'). A count on
		 * something already repeated ('x**{1000}') makes glibc build the nested repetitions
		 * that many times over, seconds of CPU: refuse it outright. */
		for (bool repeated = false;; repeated = true) {
			bool idempotent = repeated && (*p == '*' || *p == '?');
			bool counted = repeated && *p == '{';

			if ((f = repetition(&p)) == 0)
				break;
			atom = counted ? REGEX_COST_MAX + 1 : cost_mul(atom, idempotent ? 1 : f);
		}
		stack[depth] = cost_add(stack[depth], atom);
	}
	for (; depth > 0; depth--) /* unbalanced: regcomp() will say so; count it all anyway */
		stack[depth - 1] = cost_add(stack[depth - 1], stack[depth]);
	return stack[0];
}
