package httpapi

import (
	"net"
	"strings"
	"testing"
)

// FuzzHostAllowed checks the Host rule (DNS rebinding) on arbitrary Host
// headers and allowed patterns: it never panics, an IP address (with or
// without a port) and localhost always pass, and with nothing allowed a name
// that is neither an address nor under .localhost does not.
func FuzzHostAllowed(f *testing.F) {
	for _, s := range [][2]string{
		{"127.0.0.1:8080", ""}, {"[::1]:80", ""}, {"localhost", ""}, {"a.localhost:1", ""},
		{"attacker.example:8080", ""}, {"app.example.com", "*.example.com"}, {"", "*"},
		{"127.0.0.1.nip.io:8080", ""}, {"LOCALHOST.", ""}, {"[fe80::1%25eth0]:80", ""}, {"x:y:z", "x"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, host, allow string) {
		none := &API{}
		some := &API{cfg: Config{AllowHosts: []string{allow}}}
		name := host
		if h, _, err := net.SplitHostPort(host); err == nil {
			name = h
		}
		name = strings.TrimSuffix(strings.ToLower(strings.Trim(name, "[]")), ".")
		ip := net.ParseIP(name) != nil
		local := name == "localhost" || strings.HasSuffix(name, ".localhost")
		if got := none.hostAllowed(host); got != (name != "" && (ip || local)) {
			t.Fatalf("no --allow-host: hostAllowed(%q) = %v", host, got)
		}
		if (ip || local) && !some.hostAllowed(host) {
			t.Fatalf("--allow-host %q: %q refused", allow, host)
		}
	})
}

// FuzzFrameAncestors checks that no --allow-origin entry can break out of
// the CSP header it is put in: the sources hold no directive separator,
// quote or line break, and every source is one of the entries.
func FuzzFrameAncestors(f *testing.F) {
	for _, s := range []string{"https://a.example", "*", "null", "x; script-src *", "a,b", "'self'", "h\r\nX: y"} {
		f.Add(s, "https://b.example")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		got := frameAncestors([]string{a, b})
		if strings.ContainsAny(got, ";,'\"\r\n") {
			t.Fatalf("frameAncestors(%q, %q) = %q", a, b, got)
		}
		for _, src := range strings.Fields(got) {
			if src != a && src != b {
				t.Fatalf("frameAncestors(%q, %q) = %q: %q is neither", a, b, got, src)
			}
		}
	})
}
