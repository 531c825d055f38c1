/* The test build's accounting check (built with -DPRELOCKD_DEBUG only): after every pass, what
 * the kernel says the daemon holds locked must be what the lockset counts, within the budget. */
#pragma once
#include "pass.h"

#ifdef PRELOCKD_DEBUG
/* Returns 0, or -EIO after logging the mismatch. */
int debug_verify_accounting(const struct lockset *ls);
#endif
