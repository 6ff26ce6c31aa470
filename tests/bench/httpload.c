/* httpload.c - a small HTTP load client for tests/bench/proxy-bench.sh (not a test): C concurrent
 * keep-alive connections each sending the same POST back to back for a fixed count, over libcurl's
 * multi interface. Prints "rps=… p50_us=… p99_us=… ttfb_p50_us=…" for the run.
 *   httpload URL CONCURRENCY REQUESTS [HEADER...]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

static const char body[] = "{\"model\":\"claude-fake-1\",\"max_tokens\":8,\"messages\":"
    "[{\"role\":\"user\",\"content\":\"hi\"}]}";

static size_t
sink(char *d, size_t s, size_t n, void *a)
{
	(void)d;
	(void)a;
	return s * n;
}

static int
cmp(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;
	return (x > y) - (x < y);
}

static double
now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	struct curl_slist *h = NULL;
	CURLM *m;
	CURL **e;
	CURLMsg *msg;
	long *lat, *ttfb, started = 0, done = 0, total, conc, i, errors = 0;
	double t0;
	int running, left;

	if (argc < 4)
		return 2;
	conc = atol(argv[2]);
	total = atol(argv[3]);
	for (i = 4; i < argc; i++)
		h = curl_slist_append(h, argv[i]);
	h = curl_slist_append(h, "Expect:");
	curl_global_init(CURL_GLOBAL_DEFAULT);
	m = curl_multi_init();
	curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, conc);
	e = calloc((size_t)conc, sizeof(*e));
	lat = calloc((size_t)total, sizeof(*lat));
	ttfb = calloc((size_t)total, sizeof(*ttfb));
	for (i = 0; i < conc; i++) {
		e[i] = curl_easy_init();
		curl_easy_setopt(e[i], CURLOPT_URL, argv[1]);
		curl_easy_setopt(e[i], CURLOPT_HTTPHEADER, h);
		curl_easy_setopt(e[i], CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(e[i], CURLOPT_WRITEFUNCTION, sink);
		curl_easy_setopt(e[i], CURLOPT_CAINFO, getenv("BENCH_CA"));
		curl_easy_setopt(e[i], CURLOPT_PROXY, "");
		curl_easy_setopt(e[i], CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
		if (started < total) {
			curl_multi_add_handle(m, e[i]);
			started++;
		}
	}
	t0 = now();
	do {
		curl_multi_perform(m, &running);
		while ((msg = curl_multi_info_read(m, &left)) != NULL) {
			curl_off_t tt = 0, st = 0;
			long code = 0;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_TOTAL_TIME_T, &tt);
			curl_easy_getinfo(msg->easy_handle, CURLINFO_STARTTRANSFER_TIME_T, &st);
			curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
			if (msg->data.result != CURLE_OK || code != 200)
				errors++;
			lat[done] = (long)tt;
			ttfb[done] = (long)st;
			done++;
			curl_multi_remove_handle(m, msg->easy_handle);
			if (started < total) {
				curl_multi_add_handle(m, msg->easy_handle);
				started++;
				running++;
			}
		}
		if (running > 0)
			curl_multi_poll(m, NULL, 0, 1000, NULL);
	} while (done < total);
	t0 = now() - t0;
	qsort(lat, (size_t)done, sizeof(*lat), cmp);
	qsort(ttfb, (size_t)done, sizeof(*ttfb), cmp);
	printf("rps=%.0f p50_us=%ld p99_us=%ld ttfb_p50_us=%ld errors=%ld\n", (double)done / t0,
	    lat[done / 2], lat[done * 99 / 100], ttfb[done / 2], errors);
	return errors != 0;
}
