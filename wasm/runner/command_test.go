package runner_test

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/wasm/abi"
	"github.com/tabreduce/tabreduce/wasm/runner"
	"github.com/tabreduce/tabreduce/wasm/wasmtest"
)

const envcmd = "github.com/tabreduce/tabreduce/wasm/runner/testdata/envcmd"

func pairsOf(t *testing.T, res abi.Result) map[string][]string {
	t.Helper()
	ps, err := abi.DecodePairs(res.Pairs)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, p := range ps {
		out[string(p.Key)] = append(out[string(p.Key)], string(p.Value))
	}
	return out
}

// TestCommandMapAndReduce: a command gets argv, env and stdin as wasm/ABI.md
// says, its stdout lines become pairs and its stderr counter lines counters.
func TestCommandMapAndReduce(t *testing.T) {
	r := newRunner(t, runner.Config{})
	sha, err := r.Compile(t.Context(), wasmtest.Command(t, envcmd))
	if err != nil {
		t.Fatal(err)
	}
	if cmd, err := r.IsCommand(t.Context(), sha); err != nil || !cmd {
		t.Fatalf("IsCommand = %v, %v", cmd, err)
	}
	params, err := runner.CommandParams([]byte(`{"args": ["-v", "x y"], "env": ["LANG=C", "EMPTY="], "other": 1}`))
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Map(t.Context(), runner.Task{ID: "m", Module: sha, Params: params}, abi.Chunk{Offset: 42, Data: []byte("a b\n")})
	if err != nil {
		t.Fatal(err)
	}
	got := pairsOf(t, res)
	want := map[string][]string{
		"argv":        {"map -v x y"},
		"env":         {"LANG=C", "EMPTY=", "TABREDUCE_PHASE=map", "TABREDUCE_OFFSET=42"},
		"stdin":       {`"a b\n"`},
		"year":        {"2022"}, // the fake clock
		"no tab here": {""},
		"last":        {"line without newline"},
	}
	if !maps.EqualFunc(got, want, slices.Equal) {
		t.Errorf("map pairs\n got %q\nwant %q", got, want)
	}
	if c := res.Counters.Get("g.lines"); c != 5 || len(res.Counters) != 1 {
		t.Errorf("counters %v, want g.lines=5", res.Counters)
	}

	groups := abi.EncodeGroups([]abi.Pair{{Key: []byte("k"), Value: []byte("1")}, {Key: []byte("k"), Value: []byte("2\t3")}, {Key: []byte("l")}})
	res, err = r.Reduce(t.Context(), runner.Task{ID: "r", Module: sha}, groups)
	if err != nil {
		t.Fatal(err)
	}
	got = pairsOf(t, res)
	if got["argv"][0] != "reduce" || got["stdin"][0] != `"k\t1\nk\t2\t3\nl\t\n"` || !slices.Equal(got["env"], []string{"TABREDUCE_PHASE=reduce"}) {
		t.Errorf("reduce saw %q", got)
	}
	bad := abi.EncodeGroups([]abi.Pair{{Key: []byte("a\nb"), Value: []byte("1")}})
	if _, err := r.Reduce(t.Context(), runner.Task{ID: "r", Module: sha}, bad); !errors.Is(err, abi.ErrNotLines) || !errors.Is(err, runner.ErrJob) {
		t.Errorf("a key with a newline: %v, want ErrNotLines", err)
	}
	if _, err := r.Combine(t.Context(), runner.Task{ID: "c", Module: sha}, groups); !errors.Is(err, runner.ErrNoCombiner) {
		t.Errorf("combine on a command: %v, want ErrNoCombiner", err)
	}
}

// TestCommandFailures: a non-zero exit fails with the tail of stderr, too
// much stdout and bad counter lines fail, a command that never ends is
// stopped at its deadline, and a command that reaches for files is refused.
func TestCommandFailures(t *testing.T) {
	r := newRunner(t, runner.Config{MaxOutputBytes: 1 << 20, CallTimeout: 2 * time.Second})
	sha, err := r.Compile(t.Context(), wasmtest.Command(t, envcmd))
	if err != nil {
		t.Fatal(err)
	}
	run := func(arg string) error {
		params, err := runner.CommandParams([]byte(`{"args": ["` + arg + `"]}`))
		if err != nil {
			t.Fatal(err)
		}
		_, err = r.Map(t.Context(), runner.Task{ID: arg, Module: sha, Params: params}, abi.Chunk{})
		return err
	}
	err = run("fail")
	if !errors.Is(err, runner.ErrJob) || !strings.Contains(err.Error(), "exit code 3") || !strings.Contains(err.Error(), "it went wrong") {
		t.Errorf("exit 3: %v", err)
	}
	if len(err.Error()) > 3<<10 {
		t.Errorf("the error quotes %d bytes of stderr", len(err.Error()))
	}
	if err := run("flood"); !errors.Is(err, runner.ErrOutputTooLarge) {
		t.Errorf("4 MiB on stdout with a 1 MiB cap: %v", err)
	}
	if err := run("badcounter"); !errors.Is(err, runner.ErrJob) || !strings.Contains(err.Error(), "reporter:counter:GROUP,NAME,AMOUNT") {
		t.Errorf("malformed counter line: %v", err)
	}
	if err := run("loop"); !errors.Is(err, runner.ErrTimeout) {
		t.Errorf("endless loop: %v", err)
	}
	if err := run("ok"); err != nil {
		t.Errorf("the module is unusable after the failures: %v", err)
	}
	_, err = r.Compile(t.Context(), wasmtest.Command(t, "github.com/tabreduce/tabreduce/wasm/runner/testdata/filecmd"))
	if !errors.Is(err, runner.ErrImportNotAllowed) || !strings.Contains(err.Error(), "path_open") {
		t.Errorf("a command that opens files: %v", err)
	}
}

func TestCommandParams(t *testing.T) {
	for _, bad := range []string{
		`{"args": "x"}`, `{"env": ["NOEQUALS"]}`, `{"env": ["=x"]}`, `{"env": ["TABREDUCE_PHASE=x"]}`,
		`{"env": ["A=1", "A=2"]}`, `{"args": ["a\u0000b"]}`, `not json`,
		`{"args": ["` + strings.Repeat("x", abi.MaxCommandArgBytes+1) + `"]}`,
	} {
		if _, err := runner.CommandParams([]byte(bad)); !errors.Is(err, abi.ErrCommandParams) {
			t.Errorf("CommandParams(%.60s) = %v, want ErrCommandParams", bad, err)
		}
	}
	enc, err := runner.CommandParams(nil)
	if err != nil {
		t.Fatal(err)
	}
	if args, env, err := abi.DecodeCommandParams(enc); err != nil || len(args)+len(env) != 0 {
		t.Errorf("no params: %q %q %v", args, env, err)
	}
}
