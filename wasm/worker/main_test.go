package worker

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"
)

// waitFor bounds every wait in the tests, so a bug fails a test instead of
// hanging it.
const waitFor = 10 * time.Second

// TestMain fails the package if goroutines the tests started (sessions,
// slots, writers, test servers) outlive them.
func TestMain(m *testing.M) {
	before := runtime.NumGoroutine()
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(waitFor)
		n := runtime.NumGoroutine()
		for n > before && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
			n = runtime.NumGoroutine()
		}
		if n > before {
			fmt.Fprintf(os.Stderr, "goroutine leak: %d goroutines before the tests, %d after\n", before, n)
			_ = pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
			code = 1
		}
	}
	os.Exit(code)
}
