package storetest

import (
	"bytes"
	"testing"

	"github.com/tabreduce/tabreduce/server/broker"
)

// oneMiB is the size of the largest value the suite stores.
const oneMiB = 1 << 20

// sampleValues are the opaque values both queues and key/values must keep
// byte for byte.
var sampleValues = []struct {
	name  string
	value []byte
}{
	{"Empty", []byte{}},
	{"JSON", []byte(`{"n":1,"s":"x y","a":[true,null]}`)},
	{"NULBytes", []byte{0, 1, 0, 0, 2, 0}},
	{"InvalidUTF8", []byte{0xff, 0xfe, 'a', 0xc3, 0x28, 0x80}},
	{"Newlines", []byte("line1\nline2\r\n\ttab")},
	{"OneMiB", bigValue(oneMiB)},
}

// bigValue is n bytes of every byte value in turn, so a truncation or an
// encoding that drops bytes shows.
func bigValue(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}

// valueCases push each sample value and get it back by every getter.
func valueCases() []storeCase {
	var cases []storeCase
	for _, v := range sampleValues {
		cases = append(cases, storeCase{v.name, func(t *testing.T, s broker.Store) {
			values := make([]broker.NewMessage, len(getters))
			for i := range values {
				values[i] = broker.NewMessage{Value: bytes.Clone(v.value)}
			}
			for i, m := range pushMessages(t, s, "q", base, values...) {
				sameBytes(t, "pushed value", m.Value, v.value)
				// A store must not keep the caller's slice: change it.
				if len(values[i].Value) > 0 {
					values[i].Value[0]++
				}
			}
			for _, g := range getters {
				sameBytes(t, g.name+" value", g.get(t, s, "q", base).Value, v.value)
			}
		}})
	}
	return cases
}
