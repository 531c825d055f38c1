/* A guard in front of regcomp(): an estimate of how large glibc would make a POSIX extended regex,
 * computed from its text alone, so that a regex that would take seconds and gigabytes to compile is
 * refused before regcomp() runs. */
#pragma once
#include <stddef.h>

/* Real path regexes cost a few dozen; the shipped include costs 21. */
#define REGEX_COST_MAX 100000

/* The estimated number of elements regcomp() builds for re; any cost above REGEX_COST_MAX is
 * returned as REGEX_COST_MAX + 1. Never fails: a malformed regex is costed as far as it goes (and
 * regcomp() then reports what is wrong with it). */
size_t regex_cost(const char *re);
