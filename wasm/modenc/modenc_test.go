package modenc

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestAccept(t *testing.T) {
	cases := []struct {
		header string
		want   []string
	}{
		{"", nil},
		{"gzip, deflate, br, zstd", []string{Brotli, Gzip}}, // what Chromium sends
		{"gzip", []string{Gzip}},
		{"x-gzip", []string{Gzip}},
		{"br;q=0, gzip", []string{Gzip}},
		{"BR ; Q=0.5 , GZIP;q=1.0", []string{Brotli, Gzip}},
		{"*", []string{Brotli, Gzip}},
		{"*;q=0", nil},
		{"br, *;q=0", []string{Brotli}},
		{"gzip;q=2, br;q=abc", nil}, // malformed weights are ignored
		{"identity", nil},
		{",,;q=1, deflate", nil},
	}
	for _, c := range cases {
		t.Run(c.header, func(t *testing.T) {
			if got := Accept(c.header); !slices.Equal(got, c.want) {
				t.Errorf("Accept(%q) = %q, want %q", c.header, got, c.want)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	wasm := bytes.Repeat([]byte("\x00asm\x01\x00\x00\x00 some module bytes "), 1000)
	for _, enc := range Encodings {
		t.Run(enc, func(t *testing.T) {
			z, err := Encode(wasm, enc, UploadQuality)
			if err != nil {
				t.Fatal(err)
			}
			if len(z) >= len(wasm)/10 {
				t.Errorf("%s of a repetitive module: %d bytes of %d", enc, len(z), len(wasm))
			}
			got, err := Decode(bytes.NewReader(z), enc, int64(len(wasm)))
			if err != nil || !bytes.Equal(got, wasm) {
				t.Fatalf("decode: %v (equal %v)", err, bytes.Equal(got, wasm))
			}
			if _, err := Decode(bytes.NewReader(z), enc, int64(len(wasm)-1)); !errors.Is(err, ErrTooLarge) {
				t.Errorf("decode past the limit: %v, want ErrTooLarge", err)
			}
			if _, err := Decode(strings.NewReader("not compressed at all"), enc, 1<<20); err == nil {
				t.Error("decoding garbage succeeded")
			}
		})
	}
	if _, err := Encode(wasm, "zstd", 0); err == nil {
		t.Error("Encode accepted an unknown coding")
	}
}

// FuzzAccept: any header gives a subset of Encodings, in order, and never
// panics.
func FuzzAccept(f *testing.F) {
	for _, s := range []string{"gzip, deflate, br, zstd", "br;q=0.5, *;q=0", "gzip;q=", ";;,,*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		got := Accept(header)
		last := -1
		for _, enc := range got {
			i := slices.Index(Encodings, enc)
			if i <= last {
				t.Fatalf("Accept(%q) = %q: not a subset of %q in order", header, got, Encodings)
			}
			last = i
		}
	})
}
