/* writer.c - the keystore writer thread: a write's lock wait, file I/O, sealing and fsync happen here,
 * off the event loop, so clients keep being served while a write goes to disk.
 *
 * Ownership is handed over explicitly, one job at a time: the loop (dispatch.c) submits a job that owns
 * everything the write needs (the path, its own arena copy of the key, the change); from then until
 * the job comes back the loop does not touch it, and the thread touches nothing else (the secure arena
 * has its own lock). The thread runs the one keystore transaction and puts the job on the done list;
 * an eventfd wakes the loop, which takes it back (agent_writer_take) and installs the written store.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "agent.h"
#include "ak_log.h"

static pthread_t tid;
static int running;
static int efd = -1;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static struct agent_write_job *todo; /* submitted, not yet taken by the thread (at most one) */
static struct agent_write_job *done; /* finished, not yet taken back by the loop */
static int stopping;

static void *
writer_main(void *arg)
{
	struct agent_write_job *j;
	uint64_t one = 1;

	(void)arg;
	for (;;) {
		pthread_mutex_lock(&mu);
		while (todo == NULL && !stopping)
			pthread_cond_wait(&cv, &mu);
		j = todo;
		todo = NULL;
		pthread_mutex_unlock(&mu);
		if (j == NULL)
			break; /* stopping, and nothing left to write */
		agent_write_job_run(j);
		pthread_mutex_lock(&mu);
		done = j;
		pthread_mutex_unlock(&mu);
		/* Cannot fail short of a full counter: the loop reads it to zero each time. */
		(void)!write(efd, &one, sizeof(one));
	}
	return NULL;
}

/* dispatch.c's hook: 0 when the thread took the job. One at a time: dispatch.c queues the rest. */
static int
writer_submit(struct agent_write_job *j)
{
	pthread_mutex_lock(&mu);
	if (todo != NULL) {
		pthread_mutex_unlock(&mu);
		return -1;
	}
	todo = j;
	pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
	return 0;
}

int
agent_writer_start(void)
{
	sigset_t all, old;
	int r;

	if (running)
		return efd;
	if ((efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
		return -1;
	/* Signals stay the loop's: the thread blocks them all. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	r = pthread_create(&tid, NULL, writer_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r == 0)
		(void)pthread_setname_np(tid, "akagent-writer"); /* for ps, top and the tests */
	if (r != 0) {
		close(efd);
		efd = -1;
		errno = r;
		return -1;
	}
	running = 1;
	stopping = 0;
	agent_dispatch_set_writer(writer_submit);
	return efd;
}

struct agent_write_job *
agent_writer_take(void)
{
	struct agent_write_job *j;
	uint64_t n;

	if (!running)
		return NULL;
	(void)!read(efd, &n, sizeof(n));
	pthread_mutex_lock(&mu);
	j = done;
	done = NULL;
	pthread_mutex_unlock(&mu);
	return j;
}

void
agent_writer_stop(void)
{
	struct agent_write_job *j;

	if (!running)
		return;
	/* A write under way finishes (it is atomic either way); one not yet started is dropped below. */
	pthread_mutex_lock(&mu);
	stopping = 1;
	j = todo;
	todo = NULL;
	pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
	pthread_join(tid, NULL);
	agent_dispatch_set_writer(NULL);
	if (j != NULL)
		agent_write_job_drop(j);
	if ((j = done) != NULL) {
		done = NULL;
		agent_write_job_drop(j);
	}
	close(efd);
	efd = -1;
	running = 0;
}
