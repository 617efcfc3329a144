package engine

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/tabreduce/tabreduce/wasm/abi"
)

// A map task's output for one partition (a run: pairs sorted by key, then
// value) is a message of the partition queue. A small run is the message
// itself; a run larger than Config.SpillBytes is written to a file in the
// job's directory, fsynced, and the message names the file, so partitions
// larger than memory stay on disk. Reduce reads runs as streams either way.
const (
	runInline byte = 0 // the rest of the message is the pair stream
	runFile   byte = 1 // the rest is the file's name in the job's runs/ directory
)

// runMessage returns the partition-queue message of a run, spilling a large
// one to a file first.
func (e *Engine) runMessage(j *job, name string, stream []byte) ([]byte, error) {
	if len(stream) <= e.cfg.SpillBytes {
		return append([]byte{runInline}, stream...), nil
	}
	dir := filepath.Join(j.dir, "runs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := writeFileSync(filepath.Join(dir, name), stream); err != nil {
		return nil, fmt.Errorf("spill a map run: %w", err)
	}
	j.spilled.Add(1)
	return append([]byte{runFile}, name...), nil
}

// runName names a spilled run uniquely: the task's message and the copy's
// id (two copies of one task may both write one), and the partition.
func runName(msgID, copyID uint64, part int) string {
	return "m" + strconv.FormatUint(msgID, 10) + "-c" + strconv.FormatUint(copyID, 10) + "-p" + strconv.Itoa(part)
}

// pairSource yields a run's pairs in order.
type pairSource interface {
	Next() (key, value []byte, ok bool)
	Err() error
}

// openRun returns a reader of one partition-queue message's run, and a
// closer for its file (nil for an inline run).
func openRun(j *job, msg []byte) (pairSource, io.Closer, error) {
	if len(msg) == 0 {
		return nil, nil, errors.New("empty run message")
	}
	switch msg[0] {
	case runInline:
		return abi.NewPairReader(msg[1:]), nil, nil
	case runFile:
		f, err := os.Open(filepath.Join(j.dir, "runs", filepath.Base(string(msg[1:]))))
		if err != nil {
			return nil, nil, fmt.Errorf("spilled run: %w", err)
		}
		return &fileRun{r: bufio.NewReaderSize(f, 64<<10)}, f, nil
	}
	return nil, nil, fmt.Errorf("run message of kind %d", msg[0])
}

// fileRun streams a pair stream from a file; each pair it returns is a copy
// that stays valid.
type fileRun struct {
	r   *bufio.Reader
	err error
}

func (f *fileRun) Next() (key, value []byte, ok bool) {
	if f.err != nil {
		return nil, nil, false
	}
	key, err := f.field()
	if errors.Is(err, io.EOF) {
		return nil, nil, false // the end, between pairs
	}
	if err == nil {
		value, err = f.field()
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = abi.ErrTruncated
		}
		f.err = err
		return nil, nil, false
	}
	return key, value, true
}

func (f *fileRun) field() ([]byte, error) {
	var n [4]byte
	if _, err := io.ReadFull(f.r, n[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.LittleEndian.Uint32(n[:]))
	_, err := io.ReadFull(f.r, b)
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return b, err
}

func (f *fileRun) Err() error { return f.err }
