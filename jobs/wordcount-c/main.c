/*
 * wordcount-c: the wordcount job as a C program, a WASI command in the
 * style of Hadoop Streaming. It reads its chunk on stdin, counts words
 * (maximal runs of ASCII letters and digits, lower-cased, as
 * `tr -cs 'A-Za-z0-9' '\n' | tr A-Z a-z` cuts them), and prints
 * word<TAB>count lines; its reducer is the built-in sum. Counting in the
 * mapper (rather than printing "word\t1" per word) is Hadoop's in-mapper
 * combining: far fewer lines cross the host.
 *
 *   clang --target=wasm32-wasi -O2 -o wordcount-c.wasm main.c
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct entry {
	char *word;
	size_t len;
	unsigned long count;
};

static struct entry *table;
static size_t cap = 1 << 14, used;

static unsigned long hash(const char *s, size_t n) {
	unsigned long h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

static void grow(void);

static void add(const char *w, size_t n) {
	size_t i = hash(w, n) & (cap - 1);
	while (table[i].word) {
		if (table[i].len == n && memcmp(table[i].word, w, n) == 0) {
			table[i].count++;
			return;
		}
		i = (i + 1) & (cap - 1);
	}
	table[i].word = malloc(n);
	if (!table[i].word) {
		fputs("wordcount-c: out of memory\n", stderr);
		exit(1);
	}
	memcpy(table[i].word, w, n);
	table[i].len = n;
	table[i].count = 1;
	if (++used * 2 > cap)
		grow();
}

static void grow(void) {
	struct entry *old = table;
	size_t oldcap = cap;
	cap *= 2;
	table = calloc(cap, sizeof *table);
	if (!table) {
		fputs("wordcount-c: out of memory\n", stderr);
		exit(1);
	}
	for (size_t j = 0; j < oldcap; j++) {
		if (!old[j].word)
			continue;
		size_t i = hash(old[j].word, old[j].len) & (cap - 1);
		while (table[i].word)
			i = (i + 1) & (cap - 1);
		table[i] = old[j];
	}
	free(old);
}

int main(void) {
	static char buf[1 << 16];
	char word[4096];
	size_t n = 0, got;
	table = calloc(cap, sizeof *table);
	if (!table)
		return 1;
	while ((got = fread(buf, 1, sizeof buf, stdin)) > 0) {
		for (size_t i = 0; i < got; i++) {
			unsigned char c = buf[i];
			if (c >= 'A' && c <= 'Z')
				c += 'a' - 'A';
			if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
				if (n == sizeof word) {
					fputs("wordcount-c: a word longer than 4096 bytes\n", stderr);
					return 1;
				}
				word[n++] = c;
			} else if (n > 0) {
				add(word, n);
				n = 0;
			}
		}
	}
	if (n > 0)
		add(word, n);
	for (size_t i = 0; i < cap; i++)
		if (table[i].word)
			printf("%.*s\t%lu\n", (int)table[i].len, table[i].word, table[i].count);
	fprintf(stderr, "reporter:counter:wordcount,words,%zu\n", used);
	return ferror(stdout) ? 1 : 0;
}
