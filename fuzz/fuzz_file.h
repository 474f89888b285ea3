/* fuzz_file.h — the parsers under test read files: hand them the input
 * through a memfd, by its /proc path. */
#ifndef PB_FUZZ_FILE_H
#define PB_FUZZ_FILE_H

#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

static int fuzz_file(const void *data, size_t size, char *path, size_t pathsz)
{
	int fd = memfd_create("fuzz", MFD_CLOEXEC);

	if (fd < 0)
		return -1;
	if (size && write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return -1;
	}
	snprintf(path, pathsz, "/proc/self/fd/%d", fd);
	return fd;
}

#endif
