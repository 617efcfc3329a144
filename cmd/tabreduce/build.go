package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/tabreduce/tabreduce/wasm/preinit"
	"github.com/tabreduce/tabreduce/wasm/runner"
)

func init() {
	c := register("build", "[DIR]", "build the job in DIR (default .) to DIR/<name>.wasm and print its sha256 and size", buildJob)
	c.more = func() string {
		return "It runs: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -ldflags='-s -w'\n" +
			"then runs the module's _initialize once and writes the module it leaves (the Go runtime started),\n" +
			"and then checks the module as a server would (its imports, exports and ABI version).\n" +
			"<name> is the last element of the module path in DIR/go.mod.\n"
	}
}

// buildJob is `tabreduce build [DIR]`.
func buildJob(ctx context.Context, args []string, env *cliEnv) error {
	fs := newFlagSet("build", env)
	if err := parseFlags(fs, args, env); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		return usagef("want at most one directory, got %d arguments", fs.NArg())
	}
	dir := "."
	if fs.NArg() == 1 {
		dir = fs.Arg(0)
	}
	module, err := modulePath(filepath.Join(dir, "go.mod"))
	if err != nil {
		return err
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		return errors.New("the go command is not on PATH: tabreduce build runs `go build`; install Go " +
			"from https://go.dev/dl")
	}
	out := filepath.Join(dir, module[strings.LastIndex(module, "/")+1:]+".wasm")
	abs, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, goTool, "build", "-buildmode=c-shared", "-trimpath", "-ldflags=-s -w", "-o", abs, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = env.stderr, &stderr
	if err := cmd.Run(); err != nil {
		env.stderr.Write(stderr.Bytes())
		return fmt.Errorf("go build in %s: %w", dir, err)
	}
	wasm, err := os.ReadFile(abs)
	if err != nil {
		return err
	}
	if wasm, err = startModule(ctx, env, abs, wasm); err != nil {
		return err
	}
	if err := checkModule(ctx, env, wasm); err != nil {
		return fmt.Errorf("%s is not a usable job module: %w", out, err)
	}
	sum := sha256.Sum256(wasm)
	fmt.Fprintf(env.stdout, "%s  sha256 %s  %d bytes (%s)\n", out, hex.EncodeToString(sum[:]), len(wasm), humanBytes(int64(len(wasm))))
	fmt.Fprintf(env.stderr, "try it:    tabreduce run --job %s --input FILE\nsubmit it: tabreduce submit --job %s --input FILE --wait\n", out, out)
	return nil
}

// startTimeout bounds the run of a module's _initialize at build time.
const startTimeout = 30 * time.Second

// startModule replaces the module at path by the one its _initialize
// leaves (preinit.Snapshot), as make jobs does for the built-ins: a tab's
// first task then need not compile and run the Go runtime's start. A module
// that cannot be started so is kept as go build wrote it, with a note.
func startModule(ctx context.Context, env *cliEnv, path string, wasm []byte) ([]byte, error) {
	sctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	started, err := preinit.Snapshot(sctx, wasm)
	if err != nil {
		fmt.Fprintf(env.stderr, "note: %s is not started at build time (%v); it runs as built, its first task a little slower\n", path, err)
		return wasm, nil
	}
	if err := os.WriteFile(path, started, 0o644); err != nil {
		return nil, err
	}
	return started, nil
}

// modulePath reads the module path from a go.mod file.
func modulePath(gomod string) (string, error) {
	b, err := os.ReadFile(gomod)
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("no %s: run tabreduce build in a job project (make one with tabreduce new DIR)", gomod)
	}
	if err != nil {
		return "", err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
			if m := strings.Trim(strings.TrimSpace(rest), `"`); m != "" {
				return m, nil
			}
		}
	}
	return "", fmt.Errorf("%s has no module line", gomod)
}

// checkModule compiles the module as a worker would, which checks its
// imports, exports and ABI version.
func checkModule(ctx context.Context, env *cliEnv, wasm []byte) error {
	r, err := runner.New(ctx, runner.Config{CacheDir: compileCacheDir(env)})
	if err != nil {
		return err
	}
	defer r.Close(context.Background())
	_, err = r.Compile(ctx, wasm)
	return err
}
