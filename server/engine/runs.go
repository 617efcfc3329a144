package engine

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"

	"github.com/tabreduce/tabreduce/wasm/abi"
)

// A run is a sorted pair stream (by key, then value) that a task wrote: a
// map task's output for one partition, a message of the partition queue,
// or a reduce task's output, a message of the job's output queue. A small
// run is the message itself; a run larger than Config.SpillBytes is written
// to a file in the job's directory, fsynced, and the message names the
// file, so that what the store (and so memory) holds of a job stays small
// whatever its size. Runs are read as streams, from any offset.
const (
	runInline byte = 0 // the rest of the message is the pair stream
	runFile   byte = 1 // the rest is the file's name in the job's runs/ directory
)

// runFileRE is every name runName makes.
var runFileRE = regexp.MustCompile(`^[mo][0-9]{1,20}-c[0-9]{1,20}-p[0-9]{1,5}$`)

// runMessage returns the queue message of a run, spilling a large one to a
// file first.
func (e *Engine) runMessage(j *job, name string, stream []byte) ([]byte, error) {
	if len(stream) <= e.cfg.SpillBytes {
		return append([]byte{runInline}, stream...), nil
	}
	if j.shared != nil {
		ctx, cancel := context.WithTimeout(e.ctx, fetchTimeout)
		defer cancel()
		if _, err := j.shared.Put(ctx, runBlob(j, name), bytes.NewReader(stream), int64(len(stream))); err != nil {
			return nil, fmt.Errorf("spill a run: %w", err)
		}
		j.spilled.Add(1)
		return append([]byte{runFile}, name...), nil
	}
	dir := runDir(j, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := writeFileSync(filepath.Join(dir, name), stream); err != nil {
		return nil, fmt.Errorf("spill a run: %w", err)
	}
	j.spilled.Add(1)
	return append([]byte{runFile}, name...), nil
}

// runDir is where a spilled run's file is: map runs under runs/, which go
// when the job is done, reduce outputs under out/, which stay with the job.
func runDir(j *job, name string) string {
	if name[0] == 'o' {
		return filepath.Join(j.dir, "out")
	}
	return filepath.Join(j.dir, "runs")
}

// runName names a spilled run uniquely: its kind ('m' a map run, 'o' a
// reduce output), the task's message and the copy's id (two copies of one
// task may both write one), and the partition.
func runName(kind byte, msgID, copyID uint64, part int) string {
	return string(kind) + strconv.FormatUint(msgID, 10) + "-c" + strconv.FormatUint(copyID, 10) + "-p" + strconv.Itoa(part)
}

// pairSource yields a run's pairs in order. Offset is where the next pair
// starts: a reader opened there later (openRun) goes on from it.
type pairSource interface {
	Next() (key, value []byte, ok bool)
	Err() error
	Offset() int64
}

// openRun returns a reader of one queue message's run from offset on, and
// a closer for its file (nil for an inline run).
func openRun(j *job, msg []byte, offset int64) (pairSource, io.Closer, error) {
	if len(msg) == 0 {
		return nil, nil, errors.New("empty run message")
	}
	switch msg[0] {
	case runInline:
		stream := msg[1:]
		if offset < 0 || offset > int64(len(stream)) {
			return nil, nil, fmt.Errorf("offset %d is outside a run of %d bytes", offset, len(stream))
		}
		return &inlineRun{r: abi.NewPairReader(stream[offset:]), base: offset}, nil, nil
	case runFile:
		name := string(msg[1:])
		if !runFileRE.MatchString(name) {
			return nil, nil, fmt.Errorf("run file %q is not one the engine writes", truncate(name, 40))
		}
		if j.shared != nil {
			return openSharedRun(j, name, offset)
		}
		f, err := os.Open(filepath.Join(runDir(j, name), name))
		if err != nil {
			return nil, nil, fmt.Errorf("spilled run: %w", err)
		}
		if offset != 0 {
			if fi, err := f.Stat(); err != nil || offset < 0 || offset > fi.Size() {
				f.Close()
				return nil, nil, fmt.Errorf("offset %d is outside run %s", offset, name)
			}
			if _, err := f.Seek(offset, io.SeekStart); err != nil {
				f.Close()
				return nil, nil, err
			}
		}
		return &fileRun{r: bufio.NewReaderSize(f, 64<<10), pos: offset}, f, nil
	}
	return nil, nil, fmt.Errorf("run message of kind %d", msg[0])
}

// inlineRun reads a run held in its message.
type inlineRun struct {
	r    *abi.PairReader
	base int64
}

func (r *inlineRun) Next() (key, value []byte, ok bool) { return r.r.Next() }
func (r *inlineRun) Err() error                         { return r.r.Err() }
func (r *inlineRun) Offset() int64                      { return r.base + int64(r.r.Offset()) }

// fileRun streams a pair stream from a file; each pair it returns is a copy
// that stays valid.
type fileRun struct {
	r   *bufio.Reader
	pos int64
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
	f.pos += 8 + int64(len(key)) + int64(len(value))
	return key, value, true
}

// maxRunField bounds one key or value read from a run file: a damaged
// length never makes a huge allocation.
const maxRunField = 128 << 20

func (f *fileRun) field() ([]byte, error) {
	var n [4]byte
	if _, err := io.ReadFull(f.r, n[:]); err != nil {
		return nil, err
	}
	size := binary.LittleEndian.Uint32(n[:])
	if size > maxRunField {
		return nil, fmt.Errorf("%w: a field of %d bytes in a run file", abi.ErrTruncated, size)
	}
	b := make([]byte, size)
	_, err := io.ReadFull(f.r, b)
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return b, err
}

func (f *fileRun) Err() error    { return f.err }
func (f *fileRun) Offset() int64 { return f.pos }
