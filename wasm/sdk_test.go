package wasm

import (
	"go/parser"
	"go/token"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The SDK written out is closed: every package of ours its files import is
// written too, and nothing else of the repository is needed.
func TestSDKIsClosed(t *testing.T) {
	dir := t.TempDir()
	files, err := WriteSDK(dir, "test")
	if err != nil {
		t.Fatal(err)
	}
	pkgs := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, ".go") {
			pkgs[SDKModule+"/"+path.Dir(f)] = true
		}
		if strings.HasSuffix(f, "_test.go") {
			t.Errorf("%s: a test file is written", f)
		}
	}
	for _, want := range []string{"wasm/mr", "wasm/abi"} {
		if !pkgs[SDKModule+"/"+want] {
			t.Errorf("package %s is not written (have %v)", want, pkgs)
		}
	}
	for _, f := range files {
		if !strings.HasSuffix(f, ".go") {
			continue
		}
		parsed, err := parser.ParseFile(token.NewFileSet(), filepath.Join(dir, f), nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range parsed.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(p, SDKModule+"/") && !pkgs[p] {
				t.Errorf("%s imports %s, which the SDK does not carry", f, p)
			}
			if strings.Contains(strings.SplitN(p, "/", 2)[0], ".") && !strings.HasPrefix(p, SDKModule+"/") {
				t.Errorf("%s imports %s: the SDK must need no module beyond the standard library", f, p)
			}
		}
	}
	if !slices.Contains(files, "go.mod") || !slices.Contains(files, "wasm/ABI.md") {
		t.Errorf("files %v: want go.mod and wasm/ABI.md", files)
	}
}

// SDKGoVersion is the repository's go directive without its patch level.
func TestSDKGoVersion(t *testing.T) {
	b, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(b)
	if m == nil || string(m[1]) != SDKGoVersion {
		t.Fatalf("go.mod's go directive is %q, SDKGoVersion %q", m, SDKGoVersion)
	}
}
