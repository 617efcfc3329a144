package static

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
)

// TestBundle: a bundle holds each imported module once, in the order a
// browser runs them, binds what the importer names (renamed, or as a
// namespace), and runs as the modules would.
func TestBundle(t *testing.T) {
	fsys := fstest.MapFS{
		"js/main.js": {Data: []byte("import { twice, Base as B } from './a.js';\nimport * as b from './b-c.js'; // both\n" +
			"class C extends B {}\nconsole.log(JSON.stringify([twice(2), b.name, new C().kind, b.order.join(' ')]));\n")},
		"js/a.js":   {Data: []byte("import { order } from './c.js';\norder.push('a');\nexport function twice(x) { return 2 * x; }\nexport class Base { get kind() { return 'base'; } }\n")},
		"js/b-c.js": {Data: []byte("import { order } from './c.js';\norder.push('b');\nexport const name = 'b';\nexport { order };\n")},
		"js/c.js":   {Data: []byte("export const order = ['c'];\nexport async function later() { return import('./d.js'); }\n")},
	}
	if _, err := bundle(fsys, "js/main.js"); err == nil || !strings.Contains(err.Error(), "export { order }") {
		t.Fatalf("bundle with `export { order }`: %v, want it refused by name", err)
	}
	fsys["js/b-c.js"] = &fstest.MapFile{Data: []byte("import * as c from './c.js';\nc.order.push('b');\nexport const name = 'b';\nexport const order = c.order;\n")}
	out, err := bundle(fsys, "js/main.js")
	if err != nil {
		t.Fatal(err)
	}
	got := string(out)
	for _, want := range []string{
		"const __module_c = (() => {", "return { order, later };",
		"const { order } = __module_c;", "const c = __module_c;",
		"const { twice, Base: B } = __module_a;", "const b = __module_b_c;",
		"function twice(x)", "class Base {", "async function later()", "import('./d.js')",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("bundle lacks %q:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "const __module_c = "); n != 1 {
		t.Errorf("c.js inlined %d times, want once:\n%s", n, got)
	}
	if c, a, b := strings.Index(got, "__module_c = "), strings.Index(got, "__module_a = "), strings.Index(got, "__module_b_c = "); !(c < a && a < b) {
		t.Errorf("modules out of order (c %d, a %d, b %d):\n%s", c, a, b, got)
	}
	if regexp.MustCompile(`(?m)^\s*(import\s*[^\s(]|export\b)`).MatchString(got) {
		t.Errorf("bundle still imports or exports:\n%s", got)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return // the checks above hold; the browser tests run the real bundles
	}
	ran, err := exec.Command(node, "--input-type=module", "-e", got).CombinedOutput()
	if want := `[4,"b","base","c a b"]`; err != nil || strings.TrimSpace(string(ran)) != want {
		t.Fatalf("node ran the bundle: %v\n%s\nwant %s", err, ran, want)
	}
}

// TestBundleRefuses: what the bundler does not understand is an error that
// names it, never a bundle that would run differently.
func TestBundleRefuses(t *testing.T) {
	for name, c := range map[string]struct{ main, dep string }{
		"default export":   {"import { a } from './dep.js';\n", "export default 1;\n"},
		"export list":      {"import { a } from './dep.js';\n", "const a = 1;\nexport { a };\n"},
		"export let":       {"import { a } from './dep.js';\n", "export let a = 1;\n"},
		"default import":   {"import a from './dep.js';\n", "export const a = 1;\n"},
		"import.meta":      {"import { a } from './dep.js';\n", "export const a = import.meta.url;\n"},
		"bad name":         {"import { a-b } from './dep.js';\n", "export const a = 1;\n"},
		"cycle":            {"import { a } from './dep.js';\n", "import { b } from './dep.js';\nexport const a = 1;\n"},
		"missing module":   {"import { a } from './nope.js';\n", ""},
		"other directory":  {"import { a } from '../dep.js';\n", "export const a = 1;\n"},
		"side-effect only": {"import './dep.js';\n", "export const a = 1;\n"},
	} {
		t.Run(name, func(t *testing.T) {
			fsys := fstest.MapFS{"js/main.js": {Data: []byte(c.main + "console.log(1);\n")}, "js/dep.js": {Data: []byte(c.dep)}}
			if out, err := bundle(fsys, "js/main.js"); err == nil {
				t.Fatalf("bundled:\n%s", out)
			}
		})
	}
}

// TestWorkerScriptsBundle: the scripts Web Workers start from bundle, and
// the handler serves the bundles, with an ETag of their own.
func TestWorkerScriptsBundle(t *testing.T) {
	h := Handler()
	for _, name := range workerScripts {
		want, err := bundle(files, name)
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/"+name, nil))
		if rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), want) {
			t.Fatalf("GET %s: %d, %d bytes; want the %d-byte bundle", name, rec.Code, rec.Body.Len(), len(want))
		}
		if etag := rec.Header().Get("ETag"); etag != `"`+assetHashes()[name]+`"` {
			t.Fatalf("GET %s: ETag %s, want the bundle's hash %s", name, etag, assetHashes()[name])
		}
		req := httptest.NewRequest(http.MethodGet, "/"+name, nil)
		req.Header.Set("If-None-Match", rec.Header().Get("ETag"))
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusNotModified {
			t.Fatalf("GET %s with its ETag: %d, want 304", name, rec.Code)
		}
	}
}
