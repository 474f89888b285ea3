/* lazymem.h — zeroed memory the kernel backs page by page as it is first
 * written: an anonymous private mapping. For a fixed table of which an
 * idle daemon touches little or nothing (the duplicate filter, the seq
 * marks, a runner's output tail): calloc would clear it, and so make
 * every page of it resident, unless glibc happens to map it itself. */
#ifndef PB_LAZYMEM_H
#define PB_LAZYMEM_H

#include <stddef.h>

/* size zeroed bytes (size > 0), or NULL with errno set. */
void *pb_lazy_calloc(size_t size);

/* Unmaps what pb_lazy_calloc(size) gave, size the same; p may be NULL. */
void pb_lazy_free(void *p, size_t size);

#endif
