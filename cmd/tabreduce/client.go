package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tabreduce/tabreduce/server/apiclient"
	"github.com/tabreduce/tabreduce/server/engine"
)

// defaultServer is the server a client command talks to when neither
// --server nor $TABREDUCE_SERVER names one.
const defaultServer = "http://127.0.0.1:8080"

// clientFlags are the flags of every command that talks to a server.
type clientFlags struct {
	server, token string
}

// addClientFlags defines --server and --token on fs.
func addClientFlags(fs *flag.FlagSet, env *cliEnv) *clientFlags {
	cf := &clientFlags{}
	fs.StringVar(&cf.server, "server", envOr(env, "TABREDUCE_SERVER", defaultServer), "server URL (default $TABREDUCE_SERVER, else "+defaultServer+")")
	fs.StringVar(&cf.token, "token", env.getenv("TABREDUCE_TOKEN"), "bearer token (default $TABREDUCE_TOKEN)")
	return cf
}

func (cf *clientFlags) client() *apiclient.Client { return apiclient.New(cf.server, cf.token) }

// parseJobID parses the flags of a command that takes one job id, before
// or after its flags.
func parseJobID(fs *flag.FlagSet, args []string) (string, error) {
	var ids []string
	for {
		if err := fs.Parse(args); err != nil {
			return "", err
		}
		if fs.NArg() == 0 {
			break
		}
		ids = append(ids, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(ids) != 1 {
		fs.Usage()
		return "", errors.New("want one job id")
	}
	return ids[0], nil
}

// writeJSON writes v as indented JSON, for --json.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// humanBytes writes a size in decimal units: 999 B, 1.5 kB, 12.3 MB.
func humanBytes(n int64) string {
	if n < 1000 {
		return fmt.Sprintf("%d B", n)
	}
	f, units := float64(n)/1000, "kMGTP"
	for len(units) > 1 && f >= 1000 {
		f, units = f/1000, units[1:]
	}
	return fmt.Sprintf("%.1f %cB", f, units[0])
}

// shortDuration rounds d for people: 45s, 12m3s, 2h5m.
func shortDuration(d time.Duration) string {
	unit := time.Second
	if d >= time.Hour {
		unit = time.Minute
	}
	s := d.Round(unit).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	return s
}

// moduleLabel names a job's module: the built-in's name, or the start of
// its sha256.
func moduleLabel(st engine.Status) string {
	if st.Spec.Module != "" && st.Spec.Module != st.ModuleSHA {
		return st.Spec.Module
	}
	return shortSHA(st.ModuleSHA)
}

func shortSHA(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

// oneLine folds a multi-line message into one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}
