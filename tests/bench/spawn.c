/* spawn.c - akbench-spawn: what a command costs as a process, start to finish, beside other commands.
 *
 * usage: akbench-spawn [-n RUNS] [-r ROUNDS] [-j PARALLEL] -- CMD [ARG...] [:: CMD [ARG...]]...
 *
 * Every command runs RUNS times (fork, exec, wait) with PARALLEL of its processes in flight at once. The
 * commands take turns in ROUNDS rounds (the first one to go rotates), so a burst of other load on the
 * machine hits them all alike. Prints one line per command, in the order given:
 *     INDEX MEDIAN_US CPU_US
 * MEDIAN_US is the median over the rounds of (round wall time / processes run in it): with PARALLEL 1 the
 * cost of one process, with more the inverse of the throughput. CPU_US is the mean user + system time
 * of one process (its own, from wait4). stdin, stdout and stderr are /dev/null: no command can ask a
 * question, so each runs the path a script or a shell hook would. A command that fails (exit status not
 * 0) stops the run with its name on stderr, exit 1. A benchmark tool, not a test.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CMDS 16
#define MAX_ROUNDS 200

static int devnull = -1;

static double
now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static pid_t
start(char **argv)
{
	pid_t pid = fork();

	if (pid == 0) {
		dup2(devnull, 0);
		dup2(devnull, 1);
		dup2(devnull, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

/* Run argv n times, par at once; add the processes' CPU time to *cpu. Wall time in us, or -1. */
static double
batch(char **argv, int n, int par, double *cpu)
{
	struct rusage ru;
	double t0 = now_us();
	int started = 0, running = 0, st;
	pid_t pid;

	while (started < n || running > 0) {
		while (running < par && started < n) {
			if (start(argv) < 0) {
				perror("akbench-spawn: fork");
				return -1;
			}
			started++;
			running++;
		}
		if ((pid = wait4(-1, &st, 0, &ru)) < 0) {
			if (errno == EINTR)
				continue;
			perror("akbench-spawn: wait4");
			return -1;
		}
		running--;
		*cpu += (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
		    (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "akbench-spawn: %s failed (status %d)\n", argv[0], st);
			return -1;
		}
	}
	return now_us() - t0;
}

int
main(int argc, char **argv)
{
	static double wall[MAX_CMDS][MAX_ROUNDS];
	double cpu[MAX_CMDS] = { 0 };
	char **cmds[MAX_CMDS];
	int runs = 1000, rounds = 10, par = 1, ncmds = 0, per, opt, i, r, k;

	while ((opt = getopt(argc, argv, "n:r:j:")) != -1) {
		switch (opt) {
		case 'n': runs = atoi(optarg); break;
		case 'r': rounds = atoi(optarg); break;
		case 'j': par = atoi(optarg); break;
		default: goto usage;
		}
	}
	if (optind >= argc || runs < 1 || rounds < 1 || rounds > MAX_ROUNDS || par < 1)
		goto usage;
	cmds[ncmds++] = &argv[optind];
	for (i = optind; i < argc; i++) {
		if (strcmp(argv[i], "::") != 0)
			continue;
		argv[i] = NULL;
		if (ncmds == MAX_CMDS || i + 1 >= argc)
			goto usage;
		cmds[ncmds++] = &argv[i + 1];
	}
	if ((devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0) {
		perror("akbench-spawn: /dev/null");
		return 1;
	}
	per = (runs + rounds - 1) / rounds;
	if (per < par)
		per = par;
	for (r = 0; r < rounds; r++) {
		for (k = 0; k < ncmds; k++) {
			i = (r + k) % ncmds;
			if ((wall[i][r] = batch(cmds[i], per, par, &cpu[i])) < 0)
				return 1;
			wall[i][r] /= per;
		}
	}
	for (i = 0; i < ncmds; i++) {
		qsort(wall[i], (size_t)rounds, sizeof(double), cmp_double);
		printf("%d %.1f %.1f\n", i,
		    rounds % 2 ? wall[i][rounds / 2] : (wall[i][rounds / 2 - 1] + wall[i][rounds / 2]) / 2,
		    cpu[i] / ((double)per * rounds));
	}
	return 0;
usage:
	fprintf(stderr, "usage: akbench-spawn [-n RUNS] [-r ROUNDS] [-j PARALLEL] -- CMD [ARG...] [:: CMD [ARG...]]...\n");
	return 2;
}
