package mr

import "github.com/tabreduce/tabreduce/wasm/abi"

// Values iterates over the values of one key in Reduce and Combine:
//
//	for values.Next() {
//		v := values.Value()
//	}
//
// A value is valid only until the call returns; copy it to keep it.
type Values struct {
	it *valueIter
}

type valueIter struct {
	vr  abi.ValueReader
	cur []byte
	n   int
}

// reset points the iterator at a new value frame and returns it as Values.
// The engine and the aggregator each own one iterator and reuse it for every
// group, so that a Reduce or Combine call allocates nothing.
func (it *valueIter) reset(framed []byte, n int) Values {
	*it = valueIter{vr: abi.NewValueReader(framed), n: n}
	return Values{it: it}
}

// Next advances to the next value and reports whether there is one.
func (v Values) Next() bool {
	var ok bool
	v.it.cur, ok = v.it.vr.Next()
	return ok
}

// Value returns the current value.
func (v Values) Value() []byte { return v.it.cur }

// Len returns the number of values of the key, consumed or not.
func (v Values) Len() int { return v.it.n }
