/* scan_pool.c - akctl scan over files on every CPU, printed in walk order, and the progress line.
 *
 * The walking thread queues each file as a job; worker threads take jobs in order, scan them with a
 * view of the matcher (shared tables, scratch of their own) into a buffer of their own, and keep the
 * findings in the job. The walking thread prints finished jobs from the head of the queue only, so the
 * output is the same, line for line, as a scan on one thread. At most QUEUE_MAX jobs wait, so a huge
 * tree costs little memory. Large files are mapped rather than read (scan_one). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "scan.h"

#define WORKERS_MAX 16
#define QUEUE_MAX 256
/* Files from this size on may be mapped and scanned where they lie; smaller ones are always read.
 * Whether mapping or reading a large file costs less depends on the page cache, and each worker finds
 * out as it goes (io_pick). Mapped without MAP_POPULATE: populating walks the file page by page, while
 * the faults of the scan itself map 16 cached pages at a time (the kernel's fault-around), which took a
 * fifth less CPU on a tree of 1 MiB files. */
#define MAP_MIN (256u << 10)
/* The end of a mapped file read ahead at once (scan_one). */
#define TAIL_AHEAD (64u << 10)
/* Each worker maps files side by side into a region of its own and, when it is full, drops the pages
 * of all of them at once (MADV_DONTNEED) rather than unmapping each file after its scan. Unmapping in a
 * process with threads on other CPUs interrupts each of those CPUs to flush its TLB (on a virtual
 * machine each interrupt is a trip to the hypervisor) and takes the address-space lock for writing,
 * which the other worker's mapping then waits for; dropping pages needs the lock only for reading, and
 * the next file mapped over a dropped one has no pages left to flush. Per 1 MiB file this was a tenth
 * of the scan's CPU time. The region is aligned to a page-table page (2 MiB), so two workers never
 * contend for one page table's lock either. */
#define REGION_SIZE (64u << 20)
#define REGION_ALIGN (2u << 20)

struct job {
	struct job *next;          /* in submission order */
	char *path;
	int done, failed, errnum;
	uint64_t bytes;
	struct scan_findings fl;
};

struct worker {
	struct scan_pool *pool;
	struct scan_ctx x;
	pthread_t th;
	int started;
};

struct scan_pool {
	pthread_mutex_t mu;
	pthread_cond_t work, done;
	struct job *head, *tail;   /* every job not printed yet */
	struct job *next;          /* the first job no worker took */
	size_t pending;
	size_t ndone;              /* jobs done and not printed yet */
	int waiting;               /* the calling thread waits in flush_wait */
	int eager;                 /* the progress line is drawn: wake the caller for every job at the head */
	int closing;
	size_t nw;
	struct worker w[WORKERS_MAX];
};

void
scan_findings_add(struct scan_findings *l, size_t obj, uint64_t line, const char *what,
    const char *variant, int wrapped, const char *fp, int unknown)
{
	struct scan_finding *f;

	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 8;

		if ((f = realloc(l->f, cap * sizeof(*f))) == NULL) {
			l->oom = 1;
			return;
		}
		l->f = f;
		l->cap = cap;
	}
	f = &l->f[l->n++];
	f->obj = obj;
	f->line = line;
	f->what = what;
	f->variant = variant;
	f->wrapped = wrapped;
	f->unknown = unknown;
	memcpy(f->fp, fp, sizeof(f->fp));
	f->fp[sizeof(f->fp) - 1] = '\0';
}

void
scan_findings_free(struct scan_findings *l)
{
	free(l->f);
	memset(l, 0, sizeof(*l));
}

static void
sink(void *arg, uint64_t line, const char *what, const char *variant, int wrapped, const char *fp,
    int unknown)
{
	struct job *j = arg;

	scan_findings_add(&j->fl, 0, line, what, variant, wrapped, fp, unknown);
}

/* A mapped file that shrinks while it is scanned raises SIGBUS on the pages past its new end: the
 * worker that touched them jumps back and reports the file unreadable instead of dying. */
static _Thread_local sigjmp_buf *bus_env;
static struct sigaction bus_old;

static void
on_sigbus(int sig, siginfo_t *si, void *uc)
{
	(void)si;
	(void)uc;
	if (bus_env != NULL)
		siglongjmp(*bus_env, 1);
	/* Not ours: as if there were no handler. */
	signal(sig, SIG_DFL);
	raise(sig);
}

/* This worker thread's region (see REGION_SIZE): base, and the bytes in use from it. */
static _Thread_local uint8_t *region;
static _Thread_local size_t region_used;

/* Drop the pages of every file mapped in this thread's region at once; the next files are mapped over
 * them. */
static void
region_clear(void)
{
	if (region != NULL && region_used > 0 && madvise(region, region_used, MADV_DONTNEED) != 0) {
		/* Not expected: give the region up, and the files mapped in it with it. */
		munmap(region, REGION_SIZE);
		region = NULL;
	}
	region_used = 0;
}

static void
region_release(void)
{
	if (region != NULL)
		munmap(region, REGION_SIZE);
	region = NULL;
	region_used = 0;
}

/* Reserve this thread's region: address space only, aligned to REGION_ALIGN. */
static void
region_reserve(void)
{
	uint8_t *r = mmap(NULL, REGION_SIZE + REGION_ALIGN, PROT_NONE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0), *a;

	if (r == MAP_FAILED)
		return;
	a = (uint8_t *)(((uintptr_t)r + REGION_ALIGN - 1) & ~(uintptr_t)(REGION_ALIGN - 1));
	if (a > r)
		munmap(r, (size_t)(a - r));
	munmap(a + REGION_SIZE, REGION_ALIGN - (size_t)(a - r));
	region = a;
	region_used = 0;
}

/* Map fd's first len bytes read-only: into the region when it fits, else on its own.
 *
 * In the region a file starts at a multiple of the largest power of two that is not larger than the
 * file (2 MiB at most): the page cache holds a file in folios aligned that way in the file, and a
 * fault maps a whole folio only if it lies within one page table at its address. Packed page after
 * page, a 1 MiB file in one folio took 10 faults; aligned, 2 or 3 (a gigabyte of them: 10,068 faults
 * against 2,511). A region then holds half as many files at worst. */
static void *
map_file(int fd, size_t len)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE), span = (len + pg - 1) / pg * pg, al = pg, at;
	void *m;

	while (al < REGION_ALIGN && al * 2 <= len)
		al *= 2;
	if (span <= REGION_SIZE) {
		if (region == NULL)
			region_reserve();
		at = (region_used + al - 1) / al * al;
		if (region != NULL && (at > REGION_SIZE || span > REGION_SIZE - at)) {
			region_clear();
			at = 0;
		}
		if (region != NULL) {
			m = mmap(region + at, len, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0);
			if (m != MAP_FAILED) {
				region_used = at + span;
				return m;
			}
			/* A failed MAP_FIXED may have left a hole that another mapping now fills: never map
			 * into this range again, nor unmap it (its address space stays taken until exit). */
			region = NULL;
		}
	}
	return mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
}

/* Mapping or reading, for each large file. Mapping costs per folio of the page cache: a file written
 * in one go sits in folios of up to 2 MiB (kernels from 6.16 on, ext4 among them) and is mapped for
 * little, while a file read back from disk may sit in pages of 4 KiB (always, where the filesystem has
 * no large folios), and mapping and unmapping each page costs more than the kernel copying it into a
 * buffer that stays in the CPU's cache. On 1 GiB of 1 MiB files here, the scan took a tenth less time
 * mapped than read in large folios, and a sixth more in 4 KiB pages.
 *
 * Which the cache holds shows in the page faults of a mapped file: a fault maps a whole large folio,
 * but only 16 small ones (the kernel's fault-around window). A 1 MiB file written in one go took 2
 * faults, one read back in 4 KiB pages 17. So each worker maps, counts its faults, and reads while its
 * mapped files average 16 pages a fault or fewer, mapping every PROBE-th file to look again. Timing the
 * two ways instead was at the mercy of this machine's noise: a quarter of the choices were wrong. Pages
 * per fault depend on the cache alone. Findings do not depend on the choice. */
#define PROBE 32
#define FAULT_AROUND 16

enum { IO_MAP, IO_READ };

static _Thread_local struct {
	uint64_t pages, faults;   /* of the files mapped, decaying (io_note) */
	unsigned files;
} io;

static long
minor_faults(void)
{
	struct rusage ru;

	return getrusage(RUSAGE_THREAD, &ru) == 0 ? ru.ru_minflt : -1;
}

static int
io_pick(void)
{
	unsigned f = io.files++;

	if (io.pages == 0 || io.pages > FAULT_AROUND * io.faults)
		return IO_MAP;
	return f % PROBE == 0 ? IO_MAP : IO_READ;
}

/* A mapped file's pages and the faults its scan took, into the worker's totals (halved now and then,
 * to follow a cache that changes). */
static void
io_note(size_t len, long before)
{
	long after = minor_faults();

	if (before < 0 || after < before)
		return;
	io.pages += (len + 4095) / 4096;
	io.faults += (uint64_t)(after - before);
	if (io.pages > 4096) {
		io.pages /= 2;
		io.faults /= 2;
	}
}

/* Scan a mapped file, and unmap it unless it lies in the region. 0, or -1 with errno. */
static int
scan_mapped(struct scan_ctx *x, const char *path, void *map, size_t len)
{
	struct scan_stream st;
	sigjmp_buf env;
	volatile int rc = -1;

	/* A file's last partial page sits in a small folio of its own in the page cache, and where cold
	 * page cache is paged out proactively it goes first: on a tree of 1 MiB files left alone for
	 * seconds, most files had lost it, and the fault on it waited for the disk each time (817 waits
	 * in a scan of 1 GiB). Reading the end of the file ahead now overlaps that read with the scan of
	 * the rest. Only the end: asking for the whole file cost 20 us per cached MiB, the end 2 us. */
	{
		size_t pg = (size_t)sysconf(_SC_PAGESIZE);
		size_t from = len > TAIL_AHEAD ? (len - TAIL_AHEAD) / pg * pg : 0;

		(void)madvise((uint8_t *)map + from, len - from, MADV_WILLNEED);
	}
	scan_stream_begin(x, &st, path);
	if (sigsetjmp(env, 1) == 0) {
		bus_env = &env;
		scan_stream_whole(x, &st, map, len);
		bus_env = NULL;
		scan_stream_end(x, &st);
		rc = 0;
	} else {
		bus_env = NULL;
		errno = EIO;
	}
	/* A file in the region stays mapped until the region is cleared. */
	if (region == NULL || (uint8_t *)map < region || (uint8_t *)map >= region + REGION_SIZE)
		munmap(map, len);
	return rc;
}

/* Scan path: large files mapped or read (io_pick). 0, or -1 with errno (as scan_file). */
static int
scan_one(struct scan_ctx *x, const char *path)
{
	struct stat sb;
	void *map = MAP_FAILED;
	size_t len;
	long faults;
	int fd = scan_open(path, &sb), rc;

	if (fd == -2 || (fd < 0 && errno == ENOENT))
		return 0;
	if (fd < 0)
		return -1;
	if (sb.st_size < (off_t)MAP_MIN || (uint64_t)sb.st_size > SIZE_MAX / 2 || io_pick() == IO_READ ||
	    (map = map_file(fd, len = (size_t)sb.st_size)) == MAP_FAILED)
		return scan_fd(x, fd, path, 0);
	close(fd);
	faults = minor_faults();
	if ((rc = scan_mapped(x, path, map, len)) == 0)
		io_note(len, faults);
	return rc;
}

/* Whether the calling thread, printing in order, has enough to go on with (mu held, the queue not
 * empty): a finished head, and half the queue printable or all that is left, or any finished head while
 * the progress line is drawn. Each wake-up costs a context switch on a CPU the workers need, so not one
 * per file. */
static int
print_ready(const struct scan_pool *p)
{
	return p->head->done && (p->eager || p->ndone >= QUEUE_MAX / 2 || p->ndone == p->pending);
}

static void *
work(void *arg)
{
	struct worker *w = arg;
	struct scan_pool *p = w->pool;
	struct job *j;
	uint64_t before;

	for (;;) {
		pthread_mutex_lock(&p->mu);
		while (p->next == NULL && !p->closing)
			pthread_cond_wait(&p->work, &p->mu);
		j = p->next;
		if (j != NULL)
			p->next = j->next;
		pthread_mutex_unlock(&p->mu);
		if (j == NULL) {
			region_release();
			return NULL;
		}
		w->x.sink_arg = j;
		before = w->x.bytes;
		errno = 0;
		j->failed = scan_one(&w->x, j->path) != 0;
		j->errnum = errno;
		j->bytes = w->x.bytes - before;
		pthread_mutex_lock(&p->mu);
		j->done = 1;
		p->ndone++;
		if (p->waiting && print_ready(p))
			pthread_cond_signal(&p->done);
		pthread_mutex_unlock(&p->mu);
	}
}

size_t
scan_cpus(size_t max)
{
	cpu_set_t set;
	long n;

	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		n = CPU_COUNT(&set);
	else
		n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : (size_t)n > max ? max : (size_t)n;
}

static void
job_free(struct job *j)
{
	free(j->path);
	scan_findings_free(&j->fl);
	free(j);
}

/* Print the job's findings and note, as the one-thread scan would have. */
static void
job_print(struct scan_ctx *x, struct job *j)
{
	struct scan_stream st;
	size_t i;

	scan_stream_begin(x, &st, j->path);
	for (i = 0; i < j->fl.n; i++)
		scan_report(x, &st, j->fl.f[i].line, j->fl.f[i].what, j->fl.f[i].variant, j->fl.f[i].wrapped,
		    j->fl.f[i].fp, j->fl.f[i].unknown);
	if (j->fl.oom || j->failed)
		scan_progress(x, 0, NULL, 1);
	if (j->fl.oom)
		cli_note("scan: %s: out of memory: some findings not shown", j->path);
	if (j->failed)
		cli_note("scan: %s: cannot read: %s", j->path, strerror(j->errnum));
	x->bytes += j->bytes;
	x->files++;
	scan_progress(x, x->files, "files", 0);
}

/* Print the finished jobs at the head of the queue. Called with mu held; drops it while printing. */
static void
flush_done(struct scan_ctx *x)
{
	struct scan_pool *p = x->pool;
	struct job *j;

	while ((j = p->head) != NULL && j->done) {
		p->head = j->next;
		if (p->head == NULL)
			p->tail = NULL;
		p->pending--;
		p->ndone--;
		pthread_mutex_unlock(&p->mu);
		job_print(x, j);
		job_free(j);
		pthread_mutex_lock(&p->mu);
	}
}

/* Wait, with mu held and the queue not empty, until there is enough to print. */
static void
flush_wait(struct scan_pool *p)
{
	p->waiting = 1;
	/* Whatever finished while the caller was printing counts: it may be all that is coming. */
	while (!print_ready(p))
		pthread_cond_wait(&p->done, &p->mu);
	p->waiting = 0;
}

int
scan_pool_start(struct scan_ctx *x)
{
	struct scan_pool *p;
	size_t n = scan_cpus(WORKERS_MAX), i;

	x->pool = NULL;
	if (n < 2)
		return 0;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return -1;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->done, NULL);
	x->pool = p;
	p->eager = isatty(STDERR_FILENO) && !x->quiet;
	{
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = on_sigbus;
		sa.sa_flags = SA_SIGINFO;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGBUS, &sa, &bus_old);
	}
	/* Views and buffers made here: the secure arena is this thread's. */
	for (i = 0; i < n; i++) {
		struct worker *w = &p->w[i];

		w->pool = p;
		if (scan_ctx_worker(&w->x, x, sink, x->sink_arg) != 0)
			break;
		if (pthread_create(&w->th, NULL, work, w) != 0)
			break;
		w->started = 1;
		p->nw++;
	}
	if (p->nw == 0) {
		/* No thread at all: scan on this one. */
		sigaction(SIGBUS, &bus_old, NULL);
		ak_scan_free(p->w[0].x.m);
		free(p->w[0].x.buf);
		pthread_cond_destroy(&p->done);
		pthread_cond_destroy(&p->work);
		pthread_mutex_destroy(&p->mu);
		free(p);
		x->pool = NULL;
		return 0;
	}
	if (p->nw < n) {
		/* The worker that failed to start: its view and buffer are not in use. */
		ak_scan_free(p->w[p->nw].x.m);
		free(p->w[p->nw].x.buf);
		p->w[p->nw].x.m = NULL;
		p->w[p->nw].x.buf = NULL;
	}
	return 0;
}

void
scan_submit(struct scan_ctx *x, const char *path)
{
	struct scan_pool *p = x->pool;
	struct job *j;

	if (p == NULL || (j = calloc(1, sizeof(*j))) == NULL || (j->path = strdup(path)) == NULL) {
		if (p != NULL) {
			free(j);
			/* Out of memory: this file on this thread, after those queued. */
			pthread_mutex_lock(&p->mu);
			while (p->head != NULL) {
				flush_done(x);
				if (p->head != NULL)
					flush_wait(p);
			}
			pthread_mutex_unlock(&p->mu);
		}
		if (scan_file(x, path, 0) != 0) {
			scan_progress(x, 0, NULL, 1);
			cli_note("scan: %s: cannot read: %s", path, strerror(errno));
		}
		x->files++;
		return;
	}
	pthread_mutex_lock(&p->mu);
	for (;;) {
		flush_done(x);
		if (p->pending < QUEUE_MAX)
			break;
		flush_wait(p);
	}
	if (p->tail != NULL)
		p->tail->next = j;
	else
		p->head = j;
	p->tail = j;
	if (p->next == NULL)
		p->next = j;
	p->pending++;
	pthread_cond_signal(&p->work);
	pthread_mutex_unlock(&p->mu);
}

void
scan_pool_finish(struct scan_ctx *x)
{
	struct scan_pool *p = x->pool;
	size_t i;

	if (p == NULL) {
		scan_progress(x, 0, NULL, 1);
		return;
	}
	pthread_mutex_lock(&p->mu);
	p->closing = 1;
	pthread_cond_broadcast(&p->work);
	for (;;) {
		flush_done(x);
		if (p->head == NULL)
			break;
		flush_wait(p);
	}
	pthread_mutex_unlock(&p->mu);
	for (i = 0; i < p->nw; i++) {
		struct worker *w = &p->w[i];

		pthread_join(w->th, NULL);
		x->found += w->x.found;
		x->unknown += w->x.unknown;
		/* The buffer held file content (keys, maybe). */
		scan_ctx_buffer_free(&w->x);
		ak_scan_free(w->x.m);
	}
	scan_progress(x, 0, NULL, 1);
	sigaction(SIGBUS, &bus_old, NULL);
	pthread_cond_destroy(&p->done);
	pthread_cond_destroy(&p->work);
	pthread_mutex_destroy(&p->mu);
	free(p);
	x->pool = NULL;
}

/* The progress line ------------------------------------------------------------------------------ */

void
scan_progress(struct scan_ctx *x, uint64_t items, const char *what, int done)
{
	static int tty = -1, shown;
	static struct timespec last;
	struct timespec now;

	if (tty < 0)
		tty = isatty(STDERR_FILENO);
	if (!tty || x->quiet)
		return;
	if (done) {
		if (shown)
			fputs("\r\033[K", stderr);
		shown = 0;
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	/* Four times a second: drawing costs a write to the terminal. */
	if (shown && (now.tv_sec - last.tv_sec) * 1000000000L + (now.tv_nsec - last.tv_nsec) < 250000000L)
		return;
	last = now;
	shown = 1;
	fprintf(stderr, "\r\033[Kscanning: %llu %s, %llu MiB", (unsigned long long)items, what,
	    (unsigned long long)(x->bytes >> 20));
}
