package main

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"

	"github.com/tabreduce/tabreduce/wasm"
)

func init() {
	c := register("new", "[flags] DIR", "write a job project into DIR: go.mod, main.go, main_test.go and the job SDK", newProject)
	c.more = func() string {
		return "The project builds and tests with no network: its go.mod points at the SDK's source,\n" +
			"written into DIR/sdk from this binary. Then: tabreduce build DIR\n"
	}
}

// The project's files, written through text/template.
//
//go:embed template/*.tmpl
var templates embed.FS

// projectFiles maps each template to the file it becomes.
var projectFiles = map[string]string{
	"go.mod.tmpl":       "go.mod",
	"main.go.tmpl":      "main.go",
	"main_test.go.tmpl": "main_test.go",
	"gitignore.tmpl":    ".gitignore",
}

// modulePathRE is what `tabreduce new` accepts as a module path: slash-
// separated elements of letters, digits and . _ - ~.
var modulePathRE = regexp.MustCompile(`^[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*$`)

// project is what the templates see.
type project struct {
	Module, Name, GoVersion, SDKModule string
}

// newProject is `tabreduce new DIR`.
func newProject(_ context.Context, args []string, env *cliEnv) error {
	fs := newFlagSet("new", env)
	module := fs.String("module", "", "the project's module `path` (default: DIR's base name)")
	if err := parseFlags(fs, args, env); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("want one directory, got %d arguments", fs.NArg())
	}
	dir := fs.Arg(0)
	p := project{Module: *module, GoVersion: wasm.SDKGoVersion, SDKModule: wasm.SDKModule}
	if p.Module == "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return err
		}
		p.Module = filepath.Base(abs)
	}
	if !modulePathRE.MatchString(p.Module) || strings.HasPrefix(p.Module, ".") || strings.HasPrefix(p.Module, "-") {
		return usagef("module path %q: want letters, digits and . _ - ~ in /-separated elements (set one with --module)", p.Module)
	}
	p.Name = p.Module[strings.LastIndex(p.Module, "/")+1:]
	if err := emptyDir(dir); err != nil {
		return err
	}
	for tmpl, name := range projectFiles {
		if err := writeTemplate(filepath.Join(dir, name), tmpl, p); err != nil {
			return err
		}
	}
	sdkFiles, err := wasm.WriteSDK(filepath.Join(dir, "sdk"), versionString())
	if err != nil {
		return fmt.Errorf("writing the SDK: %w", err)
	}
	fmt.Fprintf(env.stdout, "wrote %s: go.mod, main.go, main_test.go, .gitignore and the job SDK (%d files in %s)\n",
		dir, len(sdkFiles), filepath.Join(dir, "sdk"))
	fmt.Fprintf(env.stdout, "next: tabreduce build %s        # → %s, its sha256 and size\n", dir, filepath.Join(dir, p.Name+".wasm"))
	fmt.Fprintf(env.stdout, "      (cd %s && go test ./...)  # the job natively, with mr.RunLocal\n", dir)
	return nil
}

// emptyDir creates dir, or accepts it if it exists and is empty, so that
// `new` never overwrites anything.
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return os.MkdirAll(dir, 0o755)
	case err != nil:
		return err
	case len(entries) > 0:
		return fmt.Errorf("%s is not empty: tabreduce new writes a project only into a new or empty directory", dir)
	}
	return nil
}

func writeTemplate(path, name string, p project) error {
	t, err := template.ParseFS(templates, "template/"+name)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, p); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// versionString is this binary's version in one phrase, for the SDK's
// README.
func versionString() string {
	v := version
	if v == "" {
		v = "a development build"
	}
	return "from tabreduce " + v
}
