package main

import (
	"strings"
	"testing"
	"time"
)

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 B", 999: "999 B", 1000: "1.0 kB", 1536: "1.5 kB", 12_345_678: "12.3 MB",
		4 << 30: "4.3 GB", 2e15: "2.0 PB", 3e18: "3000.0 PB",
	} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d): want %q, got %q", n, want, got)
		}
	}
}

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		1400 * time.Millisecond: "1s", 45 * time.Second: "45s", 12*time.Minute + 3*time.Second: "12m3s",
		12 * time.Minute: "12m", 12*time.Minute + 30*time.Second: "12m30s",
		2*time.Hour + 5*time.Minute + 40*time.Second: "2h6m", 2 * time.Hour: "2h0m",
	} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%v): want %q, got %q", d, want, got)
		}
	}
}

func TestParseJobID(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		id     string
		server string
		err    string
	}{
		{"id alone", []string{"j1"}, "j1", defaultServer, ""},
		{"flags first", []string{"--server", "http://h:1", "j1"}, "j1", "http://h:1", ""},
		{"flags after", []string{"j1", "--server", "http://h:1"}, "j1", "http://h:1", ""},
		{"no id", nil, "", "", "want one job id, got 0"},
		{"two ids", []string{"j1", "j2"}, "", "", "want one job id, got 2"},
		{"bad flag", []string{"--nope", "j1"}, "", "", "flag provided but not defined: --nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := testEnv(nil)
			fs := newFlagSet("job", env)
			cf := addClientFlags(fs, env)
			id, err := parseJobID(fs, tt.args, env)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("want error %q, got %v", tt.err, err)
				}
				return
			}
			if err != nil || id != tt.id || cf.server != tt.server {
				t.Fatalf("want %s on %s, got %q on %q, %v", tt.id, tt.server, id, cf.server, err)
			}
		})
	}
}
