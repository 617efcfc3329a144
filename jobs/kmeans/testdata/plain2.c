// kmeans's 2-D hot path (plain2.go's assign2) in C, line for line, for
// BenchmarkKmeansC: the same algorithm compiled natively and to wasm32-wasi,
// to tell how much of the Go module's gap to native is wazero's and how
// much Go's wasm code generator's. It reads the points on stdin, runs the
// path over them seven times (a line it leaves is skipped, not read by a
// general path) and prints the best rate, the counts and the sums.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const uint64_t pow10w[16] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000};
static const double pow10f[32] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
// parse.go's pow10x128: 10^-19 .. 10^0, the high 64 bits.
static const uint64_t pow10hi[20] = {0xEC1E4A7DB69561A5, 0x9392EE8E921D5D07, 0xB877AA3236A4B449, 0xE69594BEC44DE15B,
	0x901D7CF73AB0ACD9, 0xB424DC35095CD80F, 0xE12E13424BB40E13, 0x8CBCCC096F5088CB, 0xAFEBFF0BCB24AAFE,
	0xDBE6FECEBDEDD5BE, 0x89705F4136B4A597, 0xABCC77118461CEFC, 0xD6BF94D5E57A42BC, 0x8637BD05AF6C69B5,
	0xA7C5AC471B478423, 0xD1B71758E219652B, 0x83126E978D4FDF3B, 0xA3D70A3D70A3D70A, 0xCCCCCCCCCCCCCCCC,
	0x8000000000000000};

static const double cs[6] = {1, 1, 9, 9, -4, 7}; // the benchmark's centroids
static int64_t counts[3];
static double sums[6];

static inline uint64_t le64(const unsigned char *p) {
	uint64_t x;
	memcpy(&x, p, 8);
	return x;
}

// digit_run is parse.go's digitRun: how many of x's low bytes are digits,
// and the number they spell.
static inline int digit_run(uint64_t x, uint64_t *v) {
	const uint64_t hi = 0xF0F0F0F0F0F0F0F0ull, three = 0x3030303030303030ull, six = 0x0606060606060606ull;
	uint64_t nd = ((x & hi) ^ three) | (((x + six) & hi) ^ three);
	int n = nd ? __builtin_ctzll(nd) >> 3 : 8;
	uint64_t t = n ? (x - three) << (64 - 8 * n) : 0;
	t = (t * 10) + (t >> 8);
	*v = ((t & 0x000000FF000000FFull) * (100 + (1000000ull << 32)) + ((t >> 16) & 0x000000FF000000FFull) * (1 + (10000ull << 32))) >> 32;
	return n;
}

static size_t assign2(const unsigned char *c, size_t len, size_t pos, int64_t *added) {
	while (len - pos >= 64) {
		double xy[2];
		size_t p = pos;
		for (int k = 0; k < 2; k++) {
			int neg = c[p] == '-';
			p += neg;
			uint64_t v1, v2, v3, v4;
			int n1 = digit_run(le64(c + p), &v1);
			int dot = c[p + n1] == '.';
			size_t q = p + n1 + 1;
			int n2 = digit_run(le64(c + q), &v2), n3 = digit_run(le64(c + q + 8), &v3), n4 = digit_run(le64(c + q + 16), &v4);
			if (!dot) n2 = 0, v2 = 0;
			if (n2 < 8) n3 = 0, v3 = 0;
			if (n3 < 8) n4 = 0, v4 = 0;
			int frac = n2 + n3 + n4, digits = n1 + frac;
			size_t end = p + digits + dot;
			if (n1 == 8 || digits == 0 || digits > 19 || c[end] != (k ? '\n' : ',')) return pos;
			uint64_t m = ((v1 * pow10w[n2] + v2) * pow10w[n3] + v3) * pow10w[n4] + v4;
			double f = (double)m / pow10f[frac];
			if (m > (1ull << 53)) {
				int lz = __builtin_clzll(m);
				uint64_t mm = m << lz;
				unsigned __int128 pr = (unsigned __int128)mm * pow10hi[19 - frac];
				uint64_t hi = pr >> 64, lo = (uint64_t)pr;
				uint64_t top = hi >> 63, mant = hi >> (top + 9);
				uint64_t e2 = (uint64_t)((217706 * -frac >> 16) + 64 + 1023) - lz - (1 ^ top);
				if (((hi & 0x1FF) == 0x1FF && lo + mm < mm) || (lo == 0 && (hi & 0x1FF) == 0 && (mant & 3) == 1)) return pos;
				mant += mant & 1;
				mant >>= 1;
				uint64_t s = mant >> 53;
				mant >>= s;
				uint64_t bits = (e2 + s) << 52 | (mant & ((1ull << 52) - 1));
				memcpy(&f, &bits, 8);
			}
			xy[k] = neg ? -f : f;
			p = end + 1;
		}
		double x = xy[0], y = xy[1];
		int best = 0;
		double bestD = 0;
		for (int i = 0; i + 1 < 6; i += 2) {
			double dx = x - cs[i], dy = y - cs[i + 1];
			double d = dx * dx + dy * dy;
			if (d < bestD || i == 0) best = i, bestD = d;
		}
		counts[best >> 1]++;
		sums[best] += x;
		sums[best + 1] += y;
		++*added;
		pos = p;
	}
	return pos;
}

static double now(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(void) {
	size_t cap = 1 << 24, len = 0;
	unsigned char *buf = malloc(cap);
	for (size_t n; buf && (n = fread(buf + len, 1, cap - len, stdin)) > 0;) {
		if ((len += n) == cap) buf = realloc(buf, cap *= 2);
	}
	if (!buf) return 1;
	double best = 1e300;
	int64_t added = 0;
	for (int r = 0; r < 7; r++) {
		memset(counts, 0, sizeof counts);
		memset(sums, 0, sizeof sums);
		added = 0;
		double t0 = now();
		for (size_t pos = 0; len - pos >= 64;) {
			pos = assign2(buf, len, pos, &added);
			if (len - pos >= 64) pos = (unsigned char *)memchr(buf + pos, '\n', len - pos) - buf + 1;
		}
		double t = now() - t0;
		if (t < best) best = t;
	}
	printf("%.3f MB/s\n%lld %lld %lld\n%.17g %.17g %.17g %.17g %.17g %.17g\n", len / best / 1e6,
		(long long)counts[0], (long long)counts[1], (long long)counts[2], sums[0], sums[1], sums[2], sums[3], sums[4], sums[5]);
	return 0;
}
