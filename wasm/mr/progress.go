package mr

import "github.com/tabreduce/tabreduce/wasm/abi"

// meter tells the host how far the current call has got through its input
// (abi.ImportProgress), and only when that moved by at least 1 % or reached
// the end, so that a call reports about a hundred times at most however many
// lines or groups it has. Between reports it costs one comparison.
type meter struct {
	total int // bytes of the call's input; 0: no call is being metered
	next  int // the bytes consumed at which the next report is due
}

// step is the least rise worth a report: 1 %.
const step = abi.MaxProgress / 100

// callMeter meters the one call a module runs at a time.
var callMeter meter

// start meters a call over total bytes of input.
func (m *meter) start(total int) {
	m.total = total
	m.next = m.due(0)
}

// stop ends the call's metering.
func (m *meter) stop() { m.total, m.next = 0, 0 }

// due returns the bytes at which a report rises 1 % past the permille p,
// or the whole input if that is sooner.
func (m *meter) due(p int) int {
	return min(int((int64(p+step)*int64(m.total)+abi.MaxProgress-1)/abi.MaxProgress), m.total)
}

// at says that done bytes of the input are consumed.
func (m *meter) at(done int) {
	if m.total <= 0 || done < m.next {
		return
	}
	p := int(min(int64(done)*abi.MaxProgress/int64(m.total), abi.MaxProgress))
	reportProgress(uint32(p))
	if p >= abi.MaxProgress {
		m.next = m.total + 1 // reported the end: nothing more is due
		return
	}
	m.next = m.due(p)
}
