// Command tabreduce is the queue broker, map/reduce coordinator and worker in
// one binary. Each subcommand lives in its own file; this one dispatches,
// prints help and turns errors into one line on stderr.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// Exit codes: 1 for a failure, 2 for a command called wrongly.
const (
	exitFailure = 1
	exitUsage   = 2
)

// command is one subcommand: it parses its own flags from args and runs.
type command struct {
	synopsis string // what follows the command's name in its usage line
	summary  string
	// more, if set, returns text that --help prints after the flags.
	more func() string
	run  func(ctx context.Context, args []string, env *cliEnv) error
}

// cliEnv is what a subcommand may touch of the process, so tests can run
// subcommands in-process with their own streams.
type cliEnv struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

var commands = map[string]*command{}

// register adds a subcommand; each subcommand file calls it from init.
func register(name, synopsis, summary string, run func(context.Context, []string, *cliEnv) error) *command {
	c := &command{synopsis: synopsis, summary: summary, run: run}
	commands[name] = c
	return c
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Main(ctx, os.Args[1:], &cliEnv{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv})
	stop()
	os.Exit(code)
}

// Main runs one subcommand and returns the process exit code. Help goes to
// stdout; errors are one line on stderr.
func Main(ctx context.Context, args []string, env *cliEnv) int {
	if len(args) == 0 {
		usage(env.stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help", "help":
		if len(args) > 1 {
			if _, ok := commands[args[1]]; ok {
				return Main(ctx, []string{args[1], "--help"}, env)
			}
			fmt.Fprintf(env.stderr, "tabreduce: unknown command %q (run 'tabreduce help')\n", args[1])
			return exitUsage
		}
		usage(env.stdout)
		return 0
	case "-version", "--version":
		name = "version"
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(env.stderr, "tabreduce: unknown command %q (run 'tabreduce help')\n", name)
		return exitUsage
	}
	err := cmd.run(ctx, args[1:], env)
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(env.stderr, "tabreduce %s: %s (run 'tabreduce %s --help')\n", name, oneLine(ue.msg), name)
		return exitUsage
	}
	fmt.Fprintf(env.stderr, "tabreduce %s: %s\n", name, oneLine(explain(err).Error()))
	return exitFailure
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: tabreduce <command> [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nrun 'tabreduce <command> --help' for a command's flags; 'tabreduce --version' for the build")
}

// usageError is a command called wrongly: a bad flag, a missing argument, a
// value out of range. Main prints it with a pointer to the command's help.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// usagef returns a usageError.
func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// newFlagSet returns a flag set for a subcommand that reports errors
// instead of printing or exiting: parseFlags prints the help.
func newFlagSet(name string, env *cliEnv) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseFlags parses args into fs. On -h or --help it prints the command's
// help on stdout and returns flag.ErrHelp; any other mistake is a
// usageError.
func parseFlags(fs *flag.FlagSet, args []string, env *cliEnv) error {
	err := fs.Parse(args)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		printHelp(env.stdout, fs)
		return err
	}
	return &usageError{msg: strings.ReplaceAll(err.Error(), ": -", ": --")}
}

// noArgs refuses arguments left after the flags.
func noArgs(fs *flag.FlagSet) error {
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// printHelp writes a command's usage line, summary, flags and more.
func printHelp(w io.Writer, fs *flag.FlagSet) {
	cmd := commands[fs.Name()]
	if cmd == nil {
		cmd = &command{}
	}
	fmt.Fprintf(w, "usage: tabreduce %s %s\n\n%s\n", fs.Name(), cmd.synopsis, cmd.summary)
	first := true
	fs.VisitAll(func(f *flag.Flag) {
		if first {
			fmt.Fprintln(w, "\nflags:")
			first = false
		}
		kind, text := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if kind != "" {
			line += " " + kind
		}
		text = strings.ReplaceAll(text, "\n", "\n      ")
		// A token's default comes from the environment: never shown.
		if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "false" && f.Name != "token" {
			text += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(w, "%s\n      %s\n", line, text)
	})
	if cmd.more != nil {
		fmt.Fprintf(w, "\n%s", cmd.more())
	}
}
