package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
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
	// tokenFromFlag: the token was given as --token, not $TABREDUCE_TOKEN.
	tokenFromFlag bool
	env           *cliEnv
}

// addClientFlags defines --server and --token on fs.
func addClientFlags(fs *flag.FlagSet, env *cliEnv) *clientFlags {
	cf := &clientFlags{env: env}
	fs.StringVar(&cf.server, "server", envOr(env, "TABREDUCE_SERVER", defaultServer), "server `address`, host:port or http://host:port ($TABREDUCE_SERVER)")
	fs.Func("token", "bearer `token` for the server (default $TABREDUCE_TOKEN)", func(s string) error {
		cf.token, cf.tokenFromFlag = s, true
		return nil
	})
	cf.token = env.getenv("TABREDUCE_TOKEN")
	return cf
}

// resolve checks --server and writes it as a base URL.
func (cf *clientFlags) resolve() error {
	u, err := serverURL(cf.server)
	if err != nil {
		return &usageError{msg: "--server: " + err.Error()}
	}
	cf.server = u
	return nil
}

func (cf *clientFlags) client() *apiclient.Client { return apiclient.New(cf.server, cf.token) }

// command returns a tabreduce command line that reaches the same server as
// these flags: the words to put after "tabreduce CMD". A token from
// $TABREDUCE_TOKEN needs nothing; one given as a flag is not echoed.
func (cf *clientFlags) command(words ...string) string {
	line := "tabreduce " + strings.Join(words, " ")
	if cf.server != defaultServer && cf.server != envOr(cf.env, "TABREDUCE_SERVER", "") {
		line += " --server " + cf.server
	}
	if cf.tokenFromFlag {
		line += ` --token "$TABREDUCE_TOKEN"`
	}
	return line
}

// serverURL turns what --server or $TABREDUCE_SERVER says (host:port, or a
// URL) into a base URL, http://host:port.
func serverURL(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("empty: want host:port or http://host:port")
	}
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "", fmt.Errorf("%q is not an address: want host:port or http://host:port", s)
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("%q: want an http:// or https:// address", s)
	case u.Host == "" || u.Port() == "" && strings.HasSuffix(u.Host, ":"):
		return "", fmt.Errorf("%q has no host: want host:port or http://host:port", s)
	case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return "", fmt.Errorf("%q: want a plain http://host:port[/path], with no query, fragment or user", s)
	}
	return strings.TrimRight(u.Scheme+"://"+u.Host+u.EscapedPath(), "/"), nil
}

// explain turns an error met talking to a server into one a person can act
// on: a server that cannot be reached says which address failed and how to
// start one; a refusal for want of a token says how to give it.
func explain(err error) error {
	var ue *url.Error
	var oe *net.OpError
	if errors.As(err, &ue) && errors.As(err, &oe) && oe.Op == "dial" {
		base := ue.URL
		if u, perr := url.Parse(ue.URL); perr == nil {
			base = u.Scheme + "://" + u.Host
		}
		return fmt.Errorf("cannot reach the server at %s (%v): start one with 'tabreduce serve' (or 'make run' in a clone of the repository), or point --server or $TABREDUCE_SERVER at yours", base, oe.Err)
	}
	var ae *apiclient.Error
	if errors.As(err, &ae) && ae.StatusCode == http.StatusUnauthorized {
		return fmt.Errorf("%w (give the server's token with --token or $TABREDUCE_TOKEN)", err)
	}
	return err
}

// parseJobID parses the flags of a command that takes one job id, before
// or after its flags.
func parseJobID(fs *flag.FlagSet, args []string, env *cliEnv) (string, error) {
	var ids []string
	for {
		if err := parseFlags(fs, args, env); err != nil {
			return "", err
		}
		if fs.NArg() == 0 {
			break
		}
		ids = append(ids, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(ids) != 1 {
		return "", usagef("want one job id, got %d", len(ids))
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

// moduleLabel names a job's module: the built-in's name or the file name it
// was uploaded under, or else the start of its sha256.
func moduleLabel(st engine.Status) string {
	if st.ModuleName != "" {
		return st.ModuleName
	}
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
