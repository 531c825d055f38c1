/* The lock stage of a pass: judge every known file, select by budget, then unlock and lock so
 * that what is held matches the selection. */
#pragma once
#include "pass.h"
#include "plan.h"

/* Brings the lockset in line with the rules and what the scan saw. runs is scratch. Returns 0
 * or -ENOMEM. */
int lock_pass(struct lockset *ls, struct pass_ctx *c, struct runs *runs);
