package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// Set by the Makefile's build (-ldflags -X); when empty, what the Go
// toolchain stamped in the build info is shown.
var (
	version string // git describe
	commit  string // git rev-parse HEAD, with "-dirty" for uncommitted changes
)

func init() {
	register("version", "", "print the version, commit, Go and wazero this binary was built with", printVersion)
}

// printVersion is `tabreduce version` (and `tabreduce --version`).
func printVersion(_ context.Context, args []string, env *cliEnv) error {
	fs := newFlagSet("version", env)
	if err := parseFlags(fs, args, env); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		info = &debug.BuildInfo{GoVersion: runtime.Version()}
	}
	writeVersion(env.stdout, info)
	return nil
}

// writeVersion writes what the build info says of the binary: its module
// version, the commit it was built from, the Go toolchain and wazero.
func writeVersion(w io.Writer, info *debug.BuildInfo) {
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	ver := cmp.Or(version, info.Main.Version, "(unknown)")
	rev := "unknown (built without make, outside a git checkout or with -buildvcs=false)"
	switch {
	case commit != "":
		rev = commit
	case settings["vcs.revision"] != "":
		rev = settings["vcs.revision"]
		if t := settings["vcs.time"]; t != "" {
			rev += " (" + t + ")"
		}
		if settings["vcs.modified"] == "true" {
			rev += ", with uncommitted changes"
		}
	}
	wazero := "not linked"
	for _, d := range info.Deps {
		if d.Path == "github.com/tetratelabs/wazero" {
			wazero = d.Version
			if d.Replace != nil {
				wazero += " => " + d.Replace.Path + " " + d.Replace.Version
			}
		}
	}
	fmt.Fprintf(w, "tabreduce %s\ncommit    %s\ngo        %s %s/%s\nwazero    %s\n",
		ver, rev, info.GoVersion, runtime.GOOS, runtime.GOARCH, wazero)
}
