// kmeans's 2-D hot path (plain2.go's assign2, which jobs/kmeans-c/main.c
// has in C) for BenchmarkKmeansC: the same algorithm compiled natively and
// to wasm32-wasi, to tell how much of the Go module's gap to native is
// wazero's and how much Go's wasm code generator's. It reads the points on
// stdin, runs the path over them seven times (a line it leaves is skipped,
// not read by a general path) and prints the best rate, the counts and the
// sums.
#define main kmeans_c_main
#include "../../kmeans-c/main.c"
#undef main
#include <time.h>

static double cs3[6] = {1, 1, 9, 9, -4, 7}; // the benchmark's centroids
static int64_t counts3[3];
static double sums3[6];

static double now(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(void) {
	size_t cap = 1 << 24, len = 0;
	unsigned char *buf = malloc(cap + WINDOW);
	for (size_t n; buf && (n = fread(buf + len, 1, cap - len, stdin)) > 0;) {
		if ((len += n) == cap) buf = realloc(buf, (cap *= 2) + WINDOW);
	}
	if (!buf) return 1;
	memset(buf + len, 0, WINDOW);
	k = 3, dim = 2, cs = cs3, counts = counts3, sums = sums3;
	double best = 1e300;
	int64_t added = 0;
	for (int r = 0; r < 7; r++) {
		memset(counts3, 0, sizeof counts3);
		memset(sums3, 0, sizeof sums3);
		added = 0;
		double t0 = now();
		for (size_t pos = 0; pos < len;) {
			pos = assign2(buf, len, pos, &added);
			if (pos < len) {
				const unsigned char *nl = memchr(buf + pos, '\n', len - pos);
				pos = nl ? (size_t)(nl - buf) + 1 : len;
			}
		}
		double t = now() - t0;
		if (t < best) best = t;
	}
	printf("%.3f MB/s\n%lld %lld %lld\n%.17g %.17g %.17g %.17g %.17g %.17g\n", len / best / 1e6,
		(long long)counts[0], (long long)counts[1], (long long)counts[2], sums[0], sums[1], sums[2], sums[3], sums[4], sums[5]);
	return 0;
}
