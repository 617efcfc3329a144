package buntstore

import (
	"encoding/json"
	"testing"

	"github.com/tabreduce/tabreduce/server/broker"
)

func TestMetaEncoding(t *testing.T) {
	cases := map[string]meta{
		"new":    newMeta(1),
		"paused": {LastID: 1 << 40, Length: 3, InFlight: 2, Status: broker.StatusPaused, Policy: broker.PolicyBroadcast, Pushed: 9, Delivered: 7, Acked: 4, Dead: 1, Created: 1_700_000_000_000_000_000},
		"zero":   {Status: broker.StatusActive, Policy: broker.PolicyRoundRobin},
	}
	for name, m := range cases {
		t.Run(name, func(t *testing.T) {
			var got meta
			if err := decodeMeta(m.encode(), &got); err != nil || got != m {
				t.Errorf("decode(encode(%+v)) = %+v, %v", m, got, err)
			}
			// State written as JSON by earlier versions still reads.
			js, _ := json.Marshal(m)
			got = meta{}
			if err := decodeMeta(string(js), &got); err != nil || got != m {
				t.Errorf("decode of JSON %s = %+v, %v", js, got, err)
			}
		})
	}
}

func FuzzDecodeMeta(f *testing.F) {
	f.Add(newMeta(5).encode())
	f.Add(`{"last_id":3}`)
	f.Add("\x01\x09\x00")
	f.Fuzz(func(t *testing.T, v string) {
		var m meta
		if decodeMeta(v, &m) == nil && v != "" && v[0] == metaVersion {
			var again meta
			if err := decodeMeta(m.encode(), &again); err != nil || again != m {
				t.Fatalf("accepted %q as %+v, which does not round-trip: %+v, %v", v, m, again, err)
			}
		}
	})
}
