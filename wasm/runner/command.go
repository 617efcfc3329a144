package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/tabreduce/tabreduce/wasm/abi"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/sys"
)

// Command modules (plain WASI programs, wasm/ABI.md "Command modules") run
// one fresh instance per task: argv is the phase and the job's arguments,
// the environment the job's and the host's, stdin the task's input (a map
// chunk as it is; a reduce partition as key<TAB>value lines), stdout is
// read back as key<TAB>value lines and stderr for Hadoop Streaming's
// counter lines. A non-zero exit fails the task with the tail of stderr.

// stderrTail is how much of a command's stderr an error quotes: the end,
// where a C program's last words are.
const stderrTail = 2 << 10

// IsCommand reports whether the module with the given sha256 is a command
// module rather than a reactor.
func (r *Runner) IsCommand(ctx context.Context, sha string) (bool, error) {
	m, err := r.module(ctx, sha)
	if err != nil {
		return false, err
	}
	return m.command, nil
}

// CommandParams turns a job's JSON parameters into a command's arguments
// and environment, encoded as the worker protocol carries them
// (abi.AppendCommandParams): {"args": ["-x", "y"], "env": ["NAME=value"]};
// other fields are left to reactor modules. Every bound of
// abi.DecodeCommandParams is checked here, once, at submission.
func CommandParams(params []byte) ([]byte, error) {
	var p struct {
		Args []string `json:"args"`
		Env  []string `json:"env"`
	}
	if len(bytes.TrimSpace(params)) > 0 {
		if err := json.Unmarshal(params, &p); err != nil {
			return nil, fmt.Errorf("%w: params: %v (a command takes {\"args\": [strings], \"env\": [\"NAME=value\"]})", abi.ErrCommandParams, err)
		}
	}
	enc := abi.AppendCommandParams(nil, p.Args, p.Env)
	if _, _, err := abi.DecodeCommandParams(enc); err != nil {
		return nil, err
	}
	return enc, nil
}

// runCommand runs one task of a command module.
func (r *Runner) runCommand(ctx context.Context, t Task, op string, m *module, stdin []byte, offset uint64) (abi.Result, error) {
	res, err := r.command(ctx, t, op, m, stdin, offset)
	if err != nil {
		return abi.Result{}, &TaskError{Task: t.ID, Op: op, Module: t.Module, Err: err}
	}
	return res, nil
}

func (r *Runner) command(ctx context.Context, t Task, op string, m *module, stdin []byte, offset uint64) (abi.Result, error) {
	args, env, err := abi.DecodeCommandParams(t.Params)
	if err != nil {
		return abi.Result{}, fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	ctx, cancel := r.callContext(ctx)
	defer cancel()
	stdout := &capBuffer{max: r.cfg.MaxOutputBytes}
	stderr := &commandStderr{tail: tailRing{tailBuffer{max: stderrTail}}}
	cfg := wazero.NewModuleConfig().
		WithName("").
		WithArgs(append([]string{op}, args...)...).
		WithStdin(bytes.NewReader(stdin)).
		WithStdout(stdout).
		WithStderr(stderr).
		WithRandSource(rand.NewChaCha8(randSeed)).
		WithStartFunctions(abi.ExportStart)
	for _, e := range abi.CommandEnv(env, op, offset) {
		k, v, _ := strings.Cut(e, "=")
		cfg = cfg.WithEnv(k, v)
	}
	mod, err := m.rt.InstantiateModule(withMemory(ctx), m.compiled, cfg)
	if mod != nil {
		mod.Close(context.Background())
	}
	var exit *sys.ExitError
	switch {
	case ctx.Err() != nil:
		return abi.Result{}, r.classify(ctx, nil, &stderr.tail.tailBuffer, err)
	case errors.As(err, &exit):
		return abi.Result{}, fmt.Errorf("%w: exit code %d%s", ErrJob, exit.ExitCode(), stderrSuffix(stderr.tail.String()))
	case err != nil:
		return abi.Result{}, r.classify(ctx, nil, &stderr.tail.tailBuffer, err)
	case stdout.over:
		return abi.Result{}, fmt.Errorf("%w: more than %d bytes on stdout", ErrOutputTooLarge, r.cfg.MaxOutputBytes)
	}
	counters, err := stderr.counters.Counters()
	if err != nil {
		return abi.Result{}, fmt.Errorf("%w: %w", ErrJob, err)
	}
	return abi.Result{Pairs: abi.AppendLinePairs(nil, stdout.buf.Bytes()), Counters: counters}, nil
}

func stderrSuffix(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	return "; stderr: " + s
}

// capBuffer keeps what a command writes to stdout, up to max bytes; past
// that, writes fail (the program sees EIO) and over is set.
type capBuffer struct {
	max  int
	buf  bytes.Buffer
	over bool
}

var errStdoutFull = errors.New("stdout is over its limit")

func (c *capBuffer) Write(p []byte) (int, error) {
	if c.over || c.buf.Len()+len(p) > c.max {
		c.over = true
		return 0, errStdoutFull
	}
	return c.buf.Write(p)
}

// commandStderr feeds a command's stderr to the counter lines and keeps
// its tail.
type commandStderr struct {
	counters abi.CounterLines
	tail     tailRing
}

func (c *commandStderr) Write(p []byte) (int, error) {
	c.counters.Write(p)
	c.tail.Write(p)
	return len(p), nil
}

// tailRing keeps the last max bytes written.
type tailRing struct {
	tailBuffer
}

func (t *tailRing) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) > t.max {
		p = p[len(p)-t.max:]
	}
	if over := t.buf.Len() + len(p) - t.max; over > 0 {
		rest := bytes.Clone(t.buf.Bytes()[over:])
		t.buf.Reset()
		t.buf.Write(rest)
	}
	t.buf.Write(p)
	return n, nil
}
