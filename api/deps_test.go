package api_test

import (
	"os/exec"
	"strings"
	"testing"
)

// deps lists the packages of this module that pkgs import, directly or not.
func deps(t *testing.T, pkgs ...string) []string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}"}, pkgs...)...).Output()
	if err != nil {
		t.Fatalf("go list -deps %v: %v", pkgs, err)
	}
	var own []string
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, "github.com/tabreduce/tabreduce/") {
			own = append(own, p)
		}
	}
	return own
}

// Imports point one way: a program that only uses the API client links the
// contract, not the engine or the broker; the wasm side never imports the
// server.
func TestImportsPointOneWay(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	for _, p := range deps(t, "github.com/tabreduce/tabreduce/server/apiclient") {
		if p != "github.com/tabreduce/tabreduce/api" && p != "github.com/tabreduce/tabreduce/server/apiclient" {
			t.Errorf("server/apiclient imports %s", p)
		}
	}
	for _, p := range deps(t, "github.com/tabreduce/tabreduce/wasm/...") {
		if strings.HasPrefix(p, "github.com/tabreduce/tabreduce/server") || strings.HasPrefix(p, "github.com/tabreduce/tabreduce/jobs") {
			t.Errorf("a wasm package imports %s", p)
		}
	}
	for _, p := range deps(t, "github.com/tabreduce/tabreduce/server/engine", "github.com/tabreduce/tabreduce/server/broker") {
		if strings.HasPrefix(p, "github.com/tabreduce/tabreduce/jobs") || strings.HasPrefix(p, "github.com/tabreduce/tabreduce/server/buntstore") {
			t.Errorf("the engine or the broker imports %s", p)
		}
	}
}
