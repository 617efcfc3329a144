/*
 * kmeans-c: the map side of the kmeans job as a C program, a WASI command
 * in the style of Hadoop Streaming, for the Go kmeans module as reducer:
 *
 *   tabreduce submit --mapper kmeans-c --reducer kmeans \
 *       --params '{"args": ["1,1", "9,9", "-4,7"]}' points.csv
 *
 * argv[0] is the phase ("map"), then come the centroids, one argument each as a
 * point line is written ("x,y,..."). stdin is the chunk: one point a line,
 * comma-separated numbers. Each point goes to its nearest centroid (squared
 * Euclidean distance, lowest index on ties); the output is one partial per
 * centroid that got points, "%04d<TAB>count,sum1,sum2,..." with each sum in
 * 17 significant digits as Go's strconv.FormatFloat(x, 'g', 17, 64) writes
 * it — exactly what the Go kmeans module's map task emits for the same
 * chunk, so that the job's output is the Go job's, bit for bit.
 *
 * Numbers are read as Go's strconv.ParseFloat reads them (the Go job's
 * rule): an optional sign, decimal or hexadecimal (with a 'p' exponent)
 * digits, underscores between digits, "inf", "infinity", "nan"; around each
 * field, Unicode white space as Go's bytes.TrimSpace sees it; a value out of
 * range is an error. The common line, two plain decimals, takes a fast path
 * (jobs/kmeans/plain2.go's algorithm); other plain decimals Clinger's exact
 * division; hexadecimal a port of Go's own rounding; other decimals
 * wasi-libc's strtod (musl's, correctly rounded) after the syntax check.
 * Bad input exits 1 with a message naming the line's byte offset in the
 * whole input (TABREDUCE_OFFSET).
 *
 *   clang --target=wasm32-wasi -O2 -o kmeans-c.wasm main.c
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* No fused multiply-add: each square is rounded on its own, as Go does. */
#pragma STDC FP_CONTRACT OFF

/* WINDOW: the fast path loads words up to 56 bytes past a line's start;
 * the buffer is padded with this many zero bytes past the chunk. */
#define WINDOW 64

static const uint64_t pow10w[16] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000};
static const double pow10f[32] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
/* jobs/kmeans/parse.go's pow10x128: 10^-19 .. 10^0, the high 64 bits. */
static const uint64_t pow10hi[20] = {0xEC1E4A7DB69561A5, 0x9392EE8E921D5D07, 0xB877AA3236A4B449, 0xE69594BEC44DE15B,
	0x901D7CF73AB0ACD9, 0xB424DC35095CD80F, 0xE12E13424BB40E13, 0x8CBCCC096F5088CB, 0xAFEBFF0BCB24AAFE,
	0xDBE6FECEBDEDD5BE, 0x89705F4136B4A597, 0xABCC77118461CEFC, 0xD6BF94D5E57A42BC, 0x8637BD05AF6C69B5,
	0xA7C5AC471B478423, 0xD1B71758E219652B, 0x83126E978D4FDF3B, 0xA3D70A3D70A3D70A, 0xCCCCCCCCCCCCCCCC,
	0x8000000000000000};

static double *cs;   /* the centroids' coordinates, one after another */
static size_t k, dim;
static int64_t *counts;
static double *sums; /* centroid i's sums at [i*dim, (i+1)*dim) */
static double *point;
static unsigned long long offset; /* the chunk's offset in the whole input */

static void fail(const char *fmt, const char *a, size_t n, unsigned long long at) {
	fputs("kmeans-c: ", stderr);
	fprintf(stderr, fmt, at, (int)n, a);
	fputc('\n', stderr);
	exit(1);
}

static void *alloc(size_t n) {
	void *p = calloc(n ? n : 1, 1);
	if (!p) {
		fputs("kmeans-c: out of memory\n", stderr);
		exit(1);
	}
	return p;
}

/* space_at returns the length of the white space rune (as Go's
 * unicode.IsSpace has it) that starts at s[0:n], or 0. The UTF-8 forms of
 * those runes are unique, so matching their bytes is decoding them. */
static size_t space_at(const unsigned char *s, size_t n) {
	if (n == 0) return 0;
	switch (s[0]) {
	case '\t': case '\n': case '\v': case '\f': case '\r': case ' ':
		return 1;
	case 0xC2:
		return n >= 2 && (s[1] == 0x85 || s[1] == 0xA0) ? 2 : 0;
	case 0xE1:
		return n >= 3 && s[1] == 0x9A && s[2] == 0x80 ? 3 : 0;
	case 0xE2:
		if (n < 3) return 0;
		if (s[1] == 0x80 && (s[2] <= 0x8A || s[2] == 0xA8 || s[2] == 0xA9 || s[2] == 0xAF) && s[2] >= 0x80) return 3;
		return s[1] == 0x81 && s[2] == 0x9F ? 3 : 0;
	case 0xE3:
		return n >= 3 && s[1] == 0x80 && s[2] == 0x80 ? 3 : 0;
	}
	return 0;
}

/* space_before returns the length of the white space rune that ends at
 * s[n], or 0. */
static size_t space_before(const unsigned char *s, size_t n) {
	for (size_t w = 1; w <= 3 && w <= n; w++)
		if (space_at(s + n - w, w) == w) return w;
	return 0;
}

/* trim is Go's bytes.TrimSpace. */
static void trim(const unsigned char **s, size_t *n) {
	for (size_t w; (w = space_at(*s, *n)) > 0;) *s += w, *n -= w;
	for (size_t w; (w = space_before(*s, *n)) > 0;) *n -= w;
}

static int lower(int c) { return c | ('x' - 'X'); }

/* prefix_ci is how many bytes s[0:n] shares with word, case ignored. */
static size_t prefix_ci(const unsigned char *s, size_t n, const char *word) {
	size_t i = 0;
	while (i < n && word[i] && lower(s[i]) == word[i]) i++;
	return i;
}

/* underscore_ok is Go's strconv underscoreOK. */
static int underscore_ok(const unsigned char *s, size_t n) {
	int saw = '^', hex = 0;
	size_t i = 0;
	if (n >= 1 && (s[0] == '-' || s[0] == '+')) s++, n--;
	if (n >= 2 && s[0] == '0' && (lower(s[1]) == 'b' || lower(s[1]) == 'o' || lower(s[1]) == 'x')) {
		i = 2, saw = '0', hex = lower(s[1]) == 'x';
	}
	for (; i < n; i++) {
		if ((s[i] >= '0' && s[i] <= '9') || (hex && lower(s[i]) >= 'a' && lower(s[i]) <= 'f')) {
			saw = '0';
			continue;
		}
		if (s[i] == '_') {
			if (saw != '0') return 0;
			saw = '_';
			continue;
		}
		if (saw == '_') return 0;
		saw = '!';
	}
	return saw != '_';
}

/* hex_float is Go's strconv atofHex for float64: mant × 2^exp, rounded
 * to nearest even (trunc: nonzero digits were dropped past mant), or -2
 * past the largest float. musl's strtod is not used for these: it
 * misrounds some long hexadecimal mantissas. */
static int hex_float(uint64_t mant, int exp, int neg, int trunc, double *out) {
	const int mantbits = 52, bias = -1023, maxexp = 1023, minexp = bias + 1;
	exp += mantbits;
	while (mant != 0 && mant >> (mantbits + 2) == 0) mant <<= 1, exp--;
	if (trunc) mant |= 1;
	while (mant >> (1 + mantbits + 2) != 0) mant = mant >> 1 | (mant & 1), exp++;
	while (mant > 1 && exp < minexp - 2) mant = mant >> 1 | (mant & 1), exp++;
	uint64_t round = mant & 3;
	mant >>= 2;
	round |= mant & 1;
	exp += 2;
	if (round == 3) {
		mant++;
		if (mant == 1ull << (1 + mantbits)) mant >>= 1, exp++;
	}
	if (mant >> mantbits == 0) exp = bias;
	if (exp > maxexp) return -2;
	uint64_t bits = (mant & ((1ull << mantbits) - 1)) | (uint64_t)((exp - bias) & 0x7FF) << mantbits;
	if (neg) bits |= 1ull << 63;
	memcpy(out, &bits, 8);
	return 0;
}

/* parse_float reads s[0:n] as Go's strconv.ParseFloat(s, 64) does: 0 and
 * the value, or -1 (not a number) or -2 (out of range). The syntax is Go's
 * readFloat's and special's; the value Clinger's when exact, else strtod's
 * on the digits without their underscores. */
static int parse_float(const unsigned char *s, size_t n, double *out) {
	size_t i = 0;
	int neg = 0;
	if (n > 0) { /* special: [+-]inf, [+-]infinity, nan */
		size_t sign = s[0] == '+' || s[0] == '-';
		size_t m = prefix_ci(s + sign, n - sign, "infinity");
		if (m > 3 && m < 8) m = 3;
		if ((m == 3 || m == 8) && sign + m == n) {
			*out = s[0] == '-' ? -INFINITY : INFINITY;
			return 0;
		}
		if (!sign && n == 3 && prefix_ci(s, n, "nan") == 3) {
			*out = NAN;
			return 0;
		}
	}
	if (i < n && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
	int hex = 0, underscores = 0, sawdot = 0, sawdigits = 0, trunc = 0, maxmant = 19;
	uint64_t base = 10;
	if (i + 2 < n && s[i] == '0' && lower(s[i + 1]) == 'x') hex = 1, base = 16, maxmant = 16, i += 2;
	uint64_t mant = 0;
	int nd = 0, ndmant = 0, dp = 0;
	for (; i < n; i++) {
		int c = s[i];
		if (c == '_') {
			underscores = 1;
		} else if (c == '.') {
			if (sawdot) break;
			sawdot = 1, dp = nd;
		} else if (c >= '0' && c <= '9') {
			sawdigits = 1;
			if (c == '0' && nd == 0) { /* leading zeros */
				dp--;
				continue;
			}
			nd++;
			if (ndmant < maxmant) mant = mant * base + (uint64_t)(c - '0'), ndmant++;
			else if (c != '0') trunc = 1;
		} else if (hex && lower(c) >= 'a' && lower(c) <= 'f') {
			sawdigits = 1, nd++;
			if (ndmant < maxmant) mant = mant * 16 + (uint64_t)(lower(c) - 'a' + 10), ndmant++;
			else trunc = 1;
		} else {
			break;
		}
	}
	if (!sawdigits) return -1;
	if (!sawdot) dp = nd;
	if (hex) dp *= 4, ndmant *= 4;
	if (i < n && lower(s[i]) == (hex ? 'p' : 'e')) {
		if (++i >= n) return -1;
		int esign = 1, e = 0;
		if (s[i] == '+') i++;
		else if (s[i] == '-') i++, esign = -1;
		if (i >= n || s[i] < '0' || s[i] > '9') return -1;
		for (; i < n && ((s[i] >= '0' && s[i] <= '9') || s[i] == '_'); i++) {
			if (s[i] == '_') underscores = 1;
			else if (e < 10000) e = e * 10 + (s[i] - '0');
		}
		dp += e * esign;
	} else if (hex) {
		return -1;
	}
	if (i != n || (underscores && !underscore_ok(s, i))) return -1;
	int exp = mant != 0 ? dp - ndmant : 0;
	if (hex) return hex_float(mant, exp, neg, trunc, out);
	if (!trunc && mant <= (1ull << 53) && exp >= -22 && exp <= 22) { /* Clinger */
		double f = exp >= 0 ? (double)mant * pow10f[exp] : (double)mant / pow10f[-exp];
		*out = neg ? -f : f;
		return 0;
	}
	char small[128], *buf = n < sizeof small ? small : alloc(n + 1);
	size_t m = 0;
	for (size_t j = 0; j < n; j++)
		if (s[j] != '_') buf[m++] = (char)s[j];
	buf[m] = 0;
	double f = strtod(buf, NULL);
	if (buf != small) free(buf);
	if (isinf(f)) return -2;
	*out = f;
	return 0;
}

/* parse_point is the Go job's parsePoint: fields at each ',', each
 * trimmed, each a number. It returns how many it read into point (at most
 * max; one more means more), or -1/-2 and the bad field. */
static long parse_point(const unsigned char *line, size_t n, double *dst, size_t max, const unsigned char **bad, size_t *badn) {
	size_t got = 0;
	for (;;) {
		const unsigned char *comma = memchr(line, ',', n);
		size_t fn = comma ? (size_t)(comma - line) : n;
		const unsigned char *f = line;
		size_t tn = fn;
		trim(&f, &tn);
		double x;
		int err = parse_float(f, tn, &x);
		if (err) {
			*bad = f, *badn = tn;
			return err;
		}
		if (got < max) dst[got] = x;
		got++;
		if (!comma) return (long)got;
		line = comma + 1, n -= fn + 1;
	}
}

static inline uint64_t le64(const unsigned char *p) {
	uint64_t x;
	memcpy(&x, p, 8);
	return x;
}

/* digit_run is parse.go's digitRun: how many of x's low bytes are digits,
 * and the number they spell. */
static inline int digit_run(uint64_t x, uint64_t *v) {
	const uint64_t hi = 0xF0F0F0F0F0F0F0F0ull, three = 0x3030303030303030ull, six = 0x0606060606060606ull;
	uint64_t nd = ((x & hi) ^ three) | (((x + six) & hi) ^ three);
	int n = nd ? __builtin_ctzll(nd) >> 3 : 8;
	uint64_t t = n ? (x - three) << (64 - 8 * n) : 0;
	t = (t * 10) + (t >> 8);
	*v = ((t & 0x000000FF000000FFull) * (100 + (1000000ull << 32)) + ((t >> 16) & 0x000000FF000000FFull) * (1 + (10000ull << 32))) >> 32;
	return n;
}

/* nearest is the Go job's nearest: squared distance, each square rounded
 * on its own (no fused multiply-add), the lowest index
 * on ties, centroid 0 when every distance is NaN. */
static inline size_t nearest(const double *p) {
	size_t best = 0;
	double bestD = 0;
	for (size_t i = 0; i < k; i++) {
		double d = 0;
		for (size_t j = 0; j < dim; j++) {
			double diff = p[j] - cs[i * dim + j];
			d += diff * diff;
		}
		if (i == 0 || d < bestD) best = i, bestD = d;
	}
	return best;
}

static inline size_t nearest2(double x, double y) {
	size_t best = 0;
	double bestD = 0;
	for (size_t i = 0; i < k; i++) {
		double dx = x - cs[2 * i], dy = y - cs[2 * i + 1];
		double d = dx * dx + dy * dy;
		if (i == 0 || d < bestD) best = i, bestD = d;
	}
	return best;
}

/* assign2 is jobs/kmeans/plain2.go's assign2Branches (its native form;
 * assign2Masks, its wasm form, gives the same results): the lines from c[pos] on
 * that are two plain decimals ("[-]digits[.digits],[-]digits[.digits]\n",
 * at most 7 digits before a point and 19 in all), added to their
 * centroid's count and sums; it stops at the first line of any other form,
 * or whose rounding is in doubt, and returns its start. c holds WINDOW zero
 * bytes past len. */
static size_t assign2(const unsigned char *c, size_t len, size_t pos, int64_t *added) {
	while (pos < len) {
		double xy[2];
		size_t p = pos;
		for (int t = 0; t < 2; t++) {
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
			if (n1 == 8 || digits == 0 || digits > 19 || end >= len || c[end] != (t ? '\n' : ',')) return pos;
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
			xy[t] = neg ? -f : f;
			p = end + 1;
		}
		size_t best = nearest2(xy[0], xy[1]);
		counts[best]++;
		sums[2 * best] += xy[0];
		sums[2 * best + 1] += xy[1];
		++*added;
		pos = p;
	}
	return pos;
}

/* put_g17 writes x as Go's strconv.AppendFloat(dst, x, 'g', 17, 64). */
static void put_g17(double x) {
	if (isnan(x)) fputs("NaN", stdout);
	else if (isinf(x)) fputs(x < 0 ? "-Inf" : "+Inf", stdout);
	else printf("%.17g", x);
}

/* assign_lines adds the points of the lines in c[0:len] (whole lines, the
 * last one's newline optional) to their centroids; base is c's offset in
 * the whole input. c holds WINDOW readable bytes past len. */
static void assign_lines(const unsigned char *c, size_t len, unsigned long long base, int64_t *n) {
	const unsigned char *bad;
	size_t badn;
	for (size_t pos = 0; pos < len;) {
		if (dim == 2) {
			pos = assign2(c, len, pos, n);
			if (pos >= len) break;
		}
		const unsigned char *nl = memchr(c + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - c) : len, next = nl ? end + 1 : len;
		const unsigned char *line = c + pos;
		size_t ln = end - pos;
		const unsigned char *t = line;
		size_t tn = ln;
		trim(&t, &tn);
		if (tn == 0) {
			pos = next;
			continue;
		}
		long got = parse_point(line, ln, point, dim, &bad, &badn);
		if (got == -1) fail("line at %llu: %.*s is not a number", (const char *)bad, badn, base + pos);
		if (got == -2) fail("line at %llu: %.*s is out of range", (const char *)bad, badn, base + pos);
		if ((size_t)got != dim) {
			fprintf(stderr, "kmeans-c: line at %llu: %ld dimensions, the centroids have %zu\n", base + pos, got, dim);
			exit(1);
		}
		size_t i = nearest(point);
		counts[i]++;
		for (size_t j = 0; j < dim; j++) sums[i * dim + j] += point[j];
		++*n;
		pos = next;
	}
}

/* assign_stdin reads stdin a block at a time (a block grows only for a
 * line longer than it) and assigns its whole lines as they come. */
static int64_t assign_stdin(void) {
	size_t cap = 1 << 20, have = 0;
	unsigned char *buf = alloc(cap + WINDOW);
	unsigned long long base = offset;
	int64_t n = 0;
	for (;;) {
		size_t got = fread(buf + have, 1, cap - have, stdin);
		have += got;
		int eof = got == 0;
		if (eof && ferror(stdin)) {
			fputs("kmeans-c: reading stdin failed\n", stderr);
			exit(1);
		}
		memset(buf + have, 0, WINDOW);
		size_t whole = have;
		if (!eof)
			while (whole > 0 && buf[whole - 1] != '\n') whole--;
		if (whole > 0) assign_lines(buf, whole, base, &n);
		if (eof) return n;
		memmove(buf, buf + whole, have - whole);
		have -= whole, base += whole;
		if (have == cap) { /* one line fills the block */
			buf = realloc(buf, (cap *= 2) + WINDOW);
			if (!buf) {
				fputs("kmeans-c: out of memory\n", stderr);
				exit(1);
			}
		}
	}
}

int main(int argc, char **argv) {
	if (argc < 1 || strcmp(argv[0], "map") != 0) {
		fputs("kmeans-c: a mapper only (its reducer is the kmeans module); argv must be map then the centroids\n", stderr);
		return 1;
	}
	k = (size_t)argc - 1;
	if (k == 0) {
		fputs("kmeans-c: no centroids: give them in params.args, one argument each (\"x,y\")\n", stderr);
		return 1;
	}
	const char *env = getenv("TABREDUCE_OFFSET");
	offset = env ? strtoull(env, NULL, 10) : 0;
	const unsigned char *bad;
	size_t badn;
	for (size_t i = 0; i < k; i++) {
		const unsigned char *a = (const unsigned char *)argv[i + 1];
		size_t an = strlen(argv[i + 1]);
		if (i == 0) { /* the first centroid's fields say the dimensions */
			long got = parse_point(a, an, NULL, 0, &bad, &badn);
			if (got < 0) fail("centroid %llu: %.*s is not a number", (const char *)bad, badn, 0);
			dim = (size_t)got;
			cs = alloc(k * dim * sizeof *cs);
			point = alloc(dim * sizeof *point);
		}
		long got = parse_point(a, an, cs + i * dim, dim, &bad, &badn);
		if (got < 0) fail("centroid %llu: %.*s is not a number", (const char *)bad, badn, i);
		if ((size_t)got != dim) {
			fprintf(stderr, "kmeans-c: centroid %zu has %ld dimensions, centroid 0 has %zu\n", i, got, dim);
			return 1;
		}
	}
	counts = alloc(k * sizeof *counts);
	sums = alloc(k * dim * sizeof *sums);

	int64_t n = assign_stdin();
	for (size_t i = 0; i < k; i++) {
		if (counts[i] == 0) continue;
		printf("%04zu\t%lld", i, (long long)counts[i]);
		for (size_t j = 0; j < dim; j++) {
			putchar(',');
			put_g17(sums[i * dim + j]);
		}
		putchar('\n');
	}
	fprintf(stderr, "reporter:counter:kmeans,points,%lld\n", (long long)n);
	return ferror(stdout) ? 1 : 0;
}
