/* preload_mark.c - an LD_PRELOAD library for tests (never installed): at load it appends the path of the
 * program it was loaded into, one a line, to the file $AK_PRELOAD_MARK. 80-front uses it to see which
 * program served a command run with LD_PRELOAD set (the static akctl front cannot load it). */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void __attribute__((constructor))
mark(void)
{
	const char *file = getenv("AK_PRELOAD_MARK");
	char exe[4096];
	ssize_t n;
	int fd;

	if (file == NULL || (n = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) <= 0)
		return;
	exe[n++] = '\n';
	if ((fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600)) < 0)
		return;
	(void)!write(fd, exe, (size_t)n);
	close(fd);
}
