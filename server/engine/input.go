package engine

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/tabreduce/tabreduce/server/broker"
)

// inputFile is one received input file, relative to the job's directory.
type inputFile struct {
	Name string `json:"name"`
	Path string `json:"path"`
	Size int64  `json:"size"`
}

// NewInput starts receiving a new job's input in a directory of its own.
func (e *Engine) NewInput() (*Input, error) {
	id := newJobID()
	dir := filepath.Join(e.cfg.DataDir, "jobs", id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("job input: %w", err)
	}
	return &Input{e: e, jobID: id, dir: dir}, nil
}

// AddFile streams r to disk as the next input file. The whole input may not
// exceed the engine's MaxInput.
func (in *Input) AddFile(name string, r io.Reader) (int64, error) {
	rel := "input-" + strconv.Itoa(len(in.files))
	f, err := os.Create(filepath.Join(in.dir, rel))
	if err != nil {
		return 0, fmt.Errorf("job input: %w", err)
	}
	limit := in.e.cfg.MaxInput - in.size
	n, err := io.Copy(f, io.LimitReader(r, limit+1))
	if err == nil && n > limit {
		err = fmt.Errorf("%w: the input is larger than %d bytes", ErrInputTooLarge, in.e.cfg.MaxInput)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, err
	}
	in.files = append(in.files, inputFile{Name: name, Path: rel, Size: n})
	in.size += n
	return n, nil
}

// Discard removes everything received: the submission failed.
func (in *Input) Discard() {
	if in != nil {
		os.RemoveAll(in.dir)
		if in.shared {
			in.e.dropShared(in.jobID)
		}
	}
}

// Size is the number of bytes received so far.
func (in *Input) Size() int64 { return in.size }

// splitFile cuts one input file into map tasks of about size bytes, each
// ending just after a newline (the last where the file ends): a record is
// never split, and a line longer than size makes a longer chunk, up to
// limit bytes (what a task may carry); a longer one is an error. It reads
// the file once, front to back.
func splitFile(path string, fileIndex int, fileSize, size, limit int64, global uint64) ([]mapTask, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var out []mapTask
	for off := int64(0); off < fileSize; {
		end := min(off+size, fileSize)
		if end < fileSize {
			// Skip to the chunk's last byte, then to the newline at or after it.
			if _, err := r.Discard(int(end - 1 - off)); err != nil {
				return nil, err
			}
			n, err := skipLine(r)
			if err != nil {
				return nil, err
			}
			end = end - 1 + n
		} else if _, err := r.Discard(int(end - off)); err != nil {
			return nil, err
		}
		if end-off > limit {
			return nil, fmt.Errorf("%w: the line at byte %d makes a chunk of %d bytes, more than the %d a task may carry",
				broker.ErrInvalid, off, end-off, limit)
		}
		out = append(out, mapTask{File: fileIndex, Offset: off, Length: end - off, Global: global + uint64(off)})
		off = end
	}
	return out, nil
}

// skipLine consumes bytes up to and including the next newline (or to the
// end) and returns how many it consumed.
func skipLine(r *bufio.Reader) (int64, error) {
	n := int64(0)
	for {
		b, err := r.ReadSlice('\n')
		n += int64(len(b))
		switch {
		case err == nil, errors.Is(err, io.EOF):
			return n, nil
		case !errors.Is(err, bufio.ErrBufferFull):
			return n, err
		}
	}
}

// readChunk reads one map task's bytes. The job's input files stay open
// while it runs (closed by closeInputs).
func (j *job) readChunk(t mapTask) ([]byte, error) {
	if j.shared != nil {
		return j.readSharedChunk(t)
	}
	f, err := j.inputFile(t.File)
	if err != nil {
		return nil, err
	}
	b := make([]byte, t.Length)
	if _, err := f.ReadAt(b, t.Offset); err != nil {
		return nil, fmt.Errorf("read input chunk: %w", err)
	}
	return b, nil
}

func (j *job) inputFile(i int) (*os.File, error) {
	j.filesMu.Lock()
	defer j.filesMu.Unlock()
	if i < 0 || i >= len(j.rec.Files) {
		return nil, fmt.Errorf("map task names input file %d of %d", i, len(j.rec.Files))
	}
	if j.open == nil {
		j.open = make([]*os.File, len(j.rec.Files))
	}
	if j.open[i] == nil {
		f, err := os.Open(filepath.Join(j.dir, j.rec.Files[i].Path))
		if err != nil {
			return nil, err
		}
		j.open[i] = f
	}
	return j.open[i], nil
}

// closeInputs closes the job's open input files.
func (j *job) closeInputs() {
	j.filesMu.Lock()
	defer j.filesMu.Unlock()
	for _, f := range j.open {
		if f != nil {
			f.Close()
		}
	}
	j.open = nil
}
