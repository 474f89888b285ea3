/* lazymem.c — see lazymem.h. */
#include "lazymem.h"

#include <sys/mman.h>

void *pb_lazy_calloc(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

void pb_lazy_free(void *p, size_t size)
{
	if (p)
		munmap(p, size);
}
