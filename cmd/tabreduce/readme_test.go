package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tabreduce/tabreduce/wasm/wasmtest"
)

// The README's shell blocks are run as a newcomer would type them, in a
// copy of the source tree, against the server that its own `make run`
// starts: a command that fails, or prints something other than what its
// comment promises, fails the test. What the copy changes is only where
// things live: the server's address (127.0.0.1:8080 becomes a free port,
// in the text and as $TABREDUCE_SERVER), $HOME (a scratch directory whose
// .curlrc makes curl quiet and makes an HTTP error an error), and the
// module proxy (off: nothing is downloaded). The Redis protocol's port,
// 6380, becomes a free port too (and $REDIS_ADDR, for make run).
//
// Rules, by what a command is (readmeRules):
//   - `make run` serves until interrupted: it runs in the background, and
//     the next command waits for the server to answer.
//   - a command ending in & runs in the background, as in a shell;
//   - a streaming command (curl -N, websocat, redis-cli SUBSCRIBE) is cut
//     after a moment and must still have been running;
//   - a command of an optional tool (websocat, redis-cli) is skipped where
//     the tool is not installed;
//   - `make test` is skipped (it runs this test), and so is
//     redis-benchmark (make bench-redis runs it).
//
// A comment's "→ X" promises X in the command's output, literally; X ends
// at "; ", " (", ": ", " — " or the end of the comment.

// readmeRule says how the README test runs the commands that match re.
type readmeRule struct {
	re   *regexp.Regexp
	kind string // "skip", "server", "stream"
	why  string
}

var readmeRules = []readmeRule{
	{regexp.MustCompile(`^make test\b`), "skip", "the test suite runs this test"},
	{regexp.MustCompile(`^redis-benchmark `), "skip", "a benchmark: make bench-redis runs it"},
	{regexp.MustCompile(`^make run\s*(#|$)`), "server", ""},
	{regexp.MustCompile(`^(curl -N |websocat |redis-cli .* SUBSCRIBE )`), "stream", ""},
}

// optionalTools are the programs a README command may use that a fresh
// machine may lack: their commands are skipped where they are missing.
var optionalTools = []string{"websocat", "redis-cli"}

// readmeCommand is one shell statement of a README block.
type readmeCommand struct {
	line   int    // in README.md
	text   string // as written, with the test's address
	expect string // what "→" promises, or ""
	rule   *readmeRule
}

func TestREADME(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the README's commands (a minute): not with -short")
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	addr, redisAddr := closedAddr(t), closedAddr(t)
	cmds := readmeCommands(t, bash, string(readme), addr, redisAddr)
	if len(cmds) < 30 {
		t.Fatalf("found only %d commands in README.md's sh blocks", len(cmds))
	}

	work := filepath.Join(t.TempDir(), "tabreduce")
	copyTree(t, root, work)
	home := t.TempDir()
	curlrc := "silent\nshow-error\nfail-with-body\nmax-time = 60\n"
	if err := os.WriteFile(filepath.Join(home, ".curlrc"), []byte(curlrc), 0o644); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	script := readmeScript(cmds, out, "http://"+addr)
	if err := os.WriteFile(filepath.Join(out, "readme.sh"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bash, filepath.Join(out, "readme.sh"))
	cmd.Dir = work
	cmd.Env = readmeEnv(t, home, work, addr, redisAddr)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// The background commands (the server, a worker) are in the script's
	// process group: end them all.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	t.Cleanup(func() {
		if cmd.Process != nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	})
	scriptOut, err := cmd.CombinedOutput()
	if err != nil {
		at, _ := os.ReadFile(filepath.Join(out, "at"))
		n, _ := strconv.Atoi(strings.TrimSpace(string(at)))
		c := cmds[min(n, len(cmds)-1)]
		t.Fatalf("the README script: %v, at README.md:%d: %s\n%s", err, c.line, c.text, scriptOut)
	}
	checkReadmeResults(t, cmds, out)
}

// readmeCommands splits README.md's ```sh blocks into shell statements: a
// line, or the lines a statement needs to be complete (a trailing \, a
// loop), as bash -n tells.
func readmeCommands(t *testing.T, bash, readme, addr, redisAddr string) []readmeCommand {
	t.Helper()
	_, redisPort, _ := strings.Cut(redisAddr, ":")
	readme = strings.NewReplacer("127.0.0.1:8080", addr, "127.0.0.1:6380", redisAddr, "-p 6380", "-p "+redisPort).Replace(readme)
	var cmds []readmeCommand
	var pending []string
	start, inBlock := 0, false
	sc := bufio.NewScanner(strings.NewReader(readme))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case !inBlock && strings.HasPrefix(line, "```sh"):
			inBlock = true
			continue
		case inBlock && strings.HasPrefix(line, "```"):
			if len(pending) > 0 {
				t.Fatalf("README.md:%d: the block ends inside a statement:\n%s", start, strings.Join(pending, "\n"))
			}
			inBlock = false
			continue
		case !inBlock, len(pending) == 0 && (strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#")):
			continue
		}
		if len(pending) == 0 {
			start = n
		}
		pending = append(pending, line)
		text := strings.Join(pending, "\n")
		if strings.HasSuffix(line, "\\") || exec.Command(bash, "-n", "-c", text).Run() != nil {
			continue
		}
		c := readmeCommand{line: start, text: text, expect: promise(text)}
		for i := range readmeRules {
			if readmeRules[i].re.MatchString(text) {
				c.rule = &readmeRules[i]
				break
			}
		}
		cmds = append(cmds, c)
		pending = nil
	}
	return cmds
}

// promiseRE finds a comment's "→ X"; X ends at "; ", " (", ": ", " — " or
// the end of the line.
var promiseRE = regexp.MustCompile(`\s#[^\n]*?→ (.+?)(?:; | \(|: | — |$)`)

func promise(text string) string {
	if m := promiseRE.FindStringSubmatch(text); m != nil {
		return strings.TrimSpace(m[1])
	}
	return ""
}

// readmeScript runs each command with its output and exit status in files
// of its own (out/N.out, N.err, N.rc), in one shell so that variables carry
// from one command to the next.
func readmeScript(cmds []readmeCommand, out, server string) string {
	var b strings.Builder
	for i, c := range cmds {
		f := filepath.Join(out, strconv.Itoa(i))
		body := c.text
		if c.rule != nil {
			switch c.rule.kind {
			case "skip":
				fmt.Fprintf(&b, "echo skipped > %s.rc\n", f)
				continue
			case "server":
				// In the background, as its own terminal would keep it.
				// Wait for it while it runs: its build may take minutes on a
				// loaded machine, and the test's own deadline bounds it.
				fmt.Fprintf(&b, "echo %d >%s\n{ %s\n} >%s.out 2>%s.err &\necho 0 >%s.rc\n", i, filepath.Join(out, "at"), body, f, f, f)
				fmt.Fprintf(&b, "pid=$!; until curl -so /dev/null %s/healthz; do kill -0 $pid 2>/dev/null || { echo 1 >%s.rc; break; }; sleep 0.2; done\n", server, f)
				continue
			case "stream":
				body = "timeout 2 " + body
			}
		}
		tool := ""
		for _, name := range optionalTools {
			if strings.HasPrefix(c.text, name+" ") {
				tool = name
				fmt.Fprintf(&b, "if ! command -v %s >/dev/null; then echo skipped > %s.rc; else\n", name, f)
			}
		}
		fmt.Fprintf(&b, "echo %d >%s\n{ %s\n} >%s.out 2>%s.err; echo $? >%s.rc\n", i, filepath.Join(out, "at"), body, f, f, f)
		if tool != "" {
			b.WriteString("fi\n")
		}
	}
	return b.String()
}

// checkReadmeResults fails the test for each command that failed or did
// not print its promise.
func checkReadmeResults(t *testing.T, cmds []readmeCommand, out string) {
	t.Helper()
	ran := 0
	for i, c := range cmds {
		read := func(ext string) string {
			b, _ := os.ReadFile(filepath.Join(out, strconv.Itoa(i)+ext))
			return string(b)
		}
		rc := strings.TrimSpace(read(".rc"))
		if rc == "skipped" {
			why := "not installed"
			if c.rule != nil && c.rule.why != "" {
				why = c.rule.why
			}
			t.Logf("README.md:%d skipped (%s): %s", c.line, why, c.text)
			continue
		}
		ran++
		ok := rc == "0" || rc == "124" && c.rule != nil && c.rule.kind == "stream"
		if c.rule != nil && c.rule.kind == "stream" && rc != "124" {
			ok = false // a stream that ended by itself within 2 s failed
		}
		if !ok {
			t.Errorf("README.md:%d exited %s: %s\nstdout: %s\nstderr: %s", c.line, rc, c.text, tail(read(".out"), 2<<10), tail(read(".err"), 2<<10))
			continue
		}
		if c.expect != "" && !strings.Contains(read(".out"), c.expect) {
			t.Errorf("README.md:%d promises %q, printed %q: %s", c.line, c.expect, tail(read(".out"), 2<<10), c.text)
		}
	}
	t.Logf("ran %d of the README's %d commands", ran, len(cmds))
}

// readmeEnv is the environment of the README's commands: the caller's,
// less what would point them elsewhere, with the server's address, a
// scratch home, the shared caches and no module proxy.
func readmeEnv(t *testing.T, home, work, addr, redisAddr string) []string {
	t.Helper()
	goEnv := func(key string) string {
		b, err := exec.Command("go", "env", key).Output()
		if err != nil {
			t.Fatalf("go env %s: %v", key, err)
		}
		return strings.TrimSpace(string(b))
	}
	gocache, modcache := goEnv("GOCACHE"), goEnv("GOMODCACHE")
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "TABREDUCE_"), k == "HOME", k == "ADDR", k == "REDIS_ADDR", k == "DATA", k == "GOPROXY", k == "PWD":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "HOME="+home, "PWD="+work, "TABREDUCE_SERVER=http://"+addr, "TABREDUCE_CACHE="+wasmtest.CacheDir(),
		"ADDR="+addr, "REDIS_ADDR="+redisAddr, "DATA="+filepath.Join(home, "data"), "GOCACHE="+gocache, "GOMODCACHE="+modcache,
		"GOPROXY=off", "GOTOOLCHAIN=local", "GOWORK=off")
}

// copyTree copies the source tree as a fresh clone has it (the files git
// tracks, and new ones it does not ignore) and the job modules already
// built, with their times, so that make does not build them again.
func copyTree(t *testing.T, root, dst string) {
	t.Helper()
	list, err := exec.Command("git", "-C", root, "ls-files", "-co", "--exclude-standard").Output()
	if err != nil {
		t.Skipf("not a git checkout (%v): the README test copies the tracked files", err)
	}
	files := strings.Fields(string(list))
	built, _ := filepath.Glob(filepath.Join(root, "jobs", "*.wasm*"))
	for _, b := range built {
		rel, _ := filepath.Rel(root, b)
		files = append(files, rel)
	}
	for _, rel := range files {
		src := filepath.Join(root, rel)
		st, err := os.Stat(src)
		if err != nil || !st.Mode().IsRegular() {
			continue // deleted in the working tree
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		to := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, st.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(to, st.ModTime(), st.ModTime()); err != nil {
			t.Fatal(err)
		}
	}
	// The packages npm installed for a job (not tracked): the copy's make
	// would otherwise install them again before it serves.
	modules, _ := filepath.Glob(filepath.Join(root, "jobs", "*", "node_modules"))
	for _, m := range modules {
		rel, _ := filepath.Rel(root, m)
		if err := os.Symlink(m, filepath.Join(dst, rel)); err != nil {
			t.Fatal(err)
		}
	}
}

// The README's Go block is the job tabreduce new writes: each of its lines
// is a line of the template's main.go, in order.
func TestREADMEJobIsTheTemplate(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := templates.ReadFile("template/main.go.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(readme), "```go\n")
	block, _, _ = strings.Cut(block, "```")
	if !ok || len(block) < 100 {
		t.Fatalf("README.md has no Go block (%q)", block)
	}
	lines := strings.Split(string(tmpl), "\n")
	at := 0
	for _, want := range strings.Split(strings.TrimSpace(block), "\n") {
		for at < len(lines) && lines[at] != want {
			at++
		}
		if at == len(lines) {
			t.Fatalf("README.md's Go block has the line %q, which is not (in this order) in template/main.go.tmpl", want)
		}
	}
}
