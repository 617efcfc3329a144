package mr

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestModuleDeps keeps the SDK light: a job module that uses only the SDK
// (the noop job) must not link fmt, os or encoding/json, which together make
// up about a third of a small module (2.71 MB with them, 1.99 MB without).
func TestModuleDeps(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "../../jobs/noop")
	cmd.Env = append(cmd.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, "github.com/tabreduce/tabreduce/wasm/mr") {
		t.Fatalf("go list -deps of the noop job does not list the SDK: %s", out)
	}
	for _, heavy := range []string{"fmt", "os", "encoding/json"} {
		if slices.Contains(deps, heavy) {
			t.Errorf("a module using only the SDK links %s", heavy)
		}
	}
}
