/* Locking ranges of files: each locked range is its own read-only shared mapping of the file,
 * mlock()ed and sized exactly to what is locked, so the kernel's VmLck agrees with the count in
 * the lockset. Never beyond the budget, and stopping short of the memory cgroup's limit. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "files.h"
#include "pass.h"
#include "plan.h"

/* Locks [off, off + len) of f (open). Returns 0; -EDQUOT past the budget; -ENOMEM at the memory
 * cgroup's limit (ls->memcg.full is then set until the next refresh) or from mlock; -errno. */
int lock_range(struct lockset *ls, struct lfile *f, uint64_t off, uint64_t len);
/* Locks the parts of r that no piece of f holds yet. Returns 0 or the first error. */
int lock_add_runs(struct lockset *ls, struct lfile *f, const struct runs *r);
/* Bytes of f's pieces that lie inside r; with apply, the rest is unlocked (a piece may split). */
uint64_t lock_trim(struct lockset *ls, struct lfile *f, const struct runs *r, bool apply);
/* Unlocks all of f and closes its descriptor. */
void lock_unlock_file(struct lockset *ls, struct lfile *f);
/* Looks at a locked (or held) file again after a change: pages past a new end are unlocked, a
 * punched hole is filled again. *gone: no link is left to it. */
void lock_refresh(struct lockset *ls, struct pass_ctx *c, struct lfile *f, bool *gone);
void lock_release_all(struct lockset *ls);
