package main

import (
	"net"
	"strings"
	"testing"

	"github.com/tabreduce/tabreduce/jobs"
	"github.com/tabreduce/tabreduce/server"
	"github.com/tabreduce/tabreduce/server/servertest"
)

// Help goes to stdout with exit 0, for the whole tool and every command;
// the bare command prints its usage on stderr and exits 2.
func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		code, stdout, stderr := runCLI(t, args...)
		if code != 0 || stderr != "" || !strings.HasPrefix(stdout, "usage: tabreduce <command>") || !strings.Contains(stdout, "  submit   ") {
			t.Errorf("tabreduce %s: code %d, stdout %q, stderr %q; want the usage on stdout, exit 0", args, code, stdout, stderr)
		}
	}
	if code, stdout, stderr := runCLI(t); code != 2 || stdout != "" || !strings.HasPrefix(stderr, "usage: tabreduce") {
		t.Errorf("tabreduce: code %d, stdout %q, stderr %q; want the usage on stderr, exit 2", code, stdout, stderr)
	}
	for name := range commands {
		t.Run(name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, name, "--help")
			if code != 0 || stderr != "" || !strings.HasPrefix(stdout, "usage: tabreduce "+name) {
				t.Fatalf("code %d, stdout %q, stderr %q; want the command's usage on stdout, exit 0", code, stdout, stderr)
			}
			if _, viaHelp, _ := runCLI(t, "help", name); viaHelp != stdout {
				t.Errorf("tabreduce help %s differs from tabreduce %s --help:\n%s\n---\n%s", name, name, viaHelp, stdout)
			}
		})
	}
}

// submit --help names every built-in job with its description and the
// bounds of the settings.
func TestSubmitHelpListsJobs(t *testing.T) {
	_, stdout, _ := runCLI(t, "submit", "--help")
	sums := jobs.Summaries()
	for _, name := range jobs.Names() {
		if !strings.Contains(stdout, "  "+name+" ") || !strings.Contains(stdout, sums[name]) {
			t.Errorf("submit --help does not list %s with %q:\n%s", name, sums[name], stdout)
		}
	}
	for _, want := range []string{"--chunk-size 1B..64MiB", "--reducers 1..1024", "--task-timeout 1s..1h0m0s", "(default 1MiB)"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("submit --help lacks %q:\n%s", want, stdout)
		}
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"version"}} {
		code, stdout, stderr := runCLI(t, args...)
		lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
		if code != 0 || stderr != "" || len(lines) != 4 {
			t.Fatalf("tabreduce %s: code %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
		for i, prefix := range []string{"tabreduce ", "commit    ", "go        go1.", "wazero    v1."} {
			if !strings.HasPrefix(lines[i], prefix) {
				t.Errorf("line %d is %q, want it to start %q", i+1, lines[i], prefix)
			}
		}
	}
}

// A mistake in a command line is one line on stderr that points at the
// command's help, and exit 2; the usage is not dumped.
func TestFlagErrorsAreOneLine(t *testing.T) {
	for name := range commands {
		t.Run(name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, name, "--bogus")
			want := "tabreduce " + name + ": flag provided but not defined: --bogus (run 'tabreduce " + name + " --help')\n"
			if code != 2 || stdout != "" || stderr != want {
				t.Fatalf("code %d, stdout %q, stderr %q; want 2, \"\", %q", code, stdout, stderr, want)
			}
		})
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--fsync", "sometimes"}, "tabreduce serve: --fsync: "},
		{[]string{"serve", "--max-attempts", "0"}, "tabreduce serve: --max-attempts 0 is outside 1..1000"},
		{[]string{"worker", "--slots", "0"}, "tabreduce worker: --slots 0 is outside 1..1024"},
		{[]string{"worker", "--faulty", "2"}, "tabreduce worker: --faulty 2 is outside 0..1"},
		{[]string{"output", "--format", "csv", "j1"}, "tabreduce output: --format \"csv\": want tsv or ndjson"},
		{[]string{"job"}, "tabreduce job: want one job id, got 0"},
		{[]string{"jobs", "--server", "ftp://x"}, "tabreduce jobs: --server: \"ftp://x\": want an http:// or https:// address"},
		{[]string{"version", "extra"}, "tabreduce version: unexpected argument \"extra\""},
	} {
		code, _, stderr := runCLI(t, tt.args...)
		if code != 2 || !strings.HasPrefix(stderr, tt.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("tabreduce %q: code %d, stderr %q; want exit 2 and one line starting %q", tt.args, code, stderr, tt.want)
		}
	}
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// A server that is not there is named, with how to start one; --server
// takes host:port as well as a URL.
func TestServerNotRunning(t *testing.T) {
	addr := closedAddr(t)
	for _, server := range []string{addr, "http://" + addr + "/"} {
		code, _, stderr := runCLI(t, "jobs", "--server", server)
		want := "tabreduce jobs: cannot reach the server at http://" + addr + " ("
		if code != 1 || !strings.HasPrefix(stderr, want) || !strings.Contains(stderr, "start one with 'tabreduce serve'") || strings.Count(stderr, "\n") != 1 {
			t.Errorf("jobs --server %s: code %d, stderr %q; want exit 1 and one line starting %q", server, code, stderr, want)
		}
	}
	srv := servertest.Start(t, server.Config{Token: "sesame"})
	code, _, stderr := runCLI(t, "jobs", "--server", strings.TrimPrefix(srv.URL(), "http://"))
	if code != 1 || !strings.Contains(stderr, "401 Unauthorized") || !strings.Contains(stderr, "--token or $TABREDUCE_TOKEN") {
		t.Errorf("jobs without the token: code %d, stderr %q", code, stderr)
	}
}
