package apiclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strconv"

	"github.com/tabreduce/tabreduce/api"
)

// Input is one input file of a job. Open is called once, when the file's
// turn comes while the request is sent; what it returns is closed after.
type Input struct {
	Name string // the file's name as the server records it
	Open func() (io.ReadCloser, error)
}

// FileInput is the file at path.
func FileInput(path string) Input {
	return Input{Name: filepath.Base(path), Open: func() (io.ReadCloser, error) { return os.Open(path) }}
}

// ReaderInput is what r holds, under name.
func ReaderInput(name string, r io.Reader) Input {
	return Input{Name: name, Open: func() (io.ReadCloser, error) { return io.NopCloser(r), nil }}
}

// errSent ends the form's writer once the server has answered.
var errSent = errors.New("request answered")

// SubmitJob submits a job: spec's fields first, then each input in turn,
// as multipart/form-data written through a pipe while the request is sent,
// so an input is never held in memory. The server checks the fields before
// it takes any input, so a refused spec costs no upload. spec.Module is a
// built-in job's name or the sha256 UploadModule returned.
func (c *Client) SubmitJob(ctx context.Context, spec api.Spec, inputs ...Input) (Job, error) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	written := make(chan error, 1)
	go func() {
		err := writeJobForm(mw, spec, inputs)
		pw.CloseWithError(err) // nil: the body ends
		written <- err
	}()
	var job Job
	err := c.call(ctx, http.MethodPost, "/api/v1/jobs", pr, mw.FormDataContentType(), http.StatusCreated, &job)
	pr.CloseWithError(errSent) // the server may answer before it has read everything
	if werr := <-written; werr != nil && !errors.Is(werr, errSent) && !errors.Is(werr, io.ErrClosedPipe) {
		return Job{}, werr // a failed input is the cause of whatever else went wrong
	}
	return job, err
}

func writeJobForm(mw *multipart.Writer, spec api.Spec, inputs []Input) error {
	for _, f := range specFields(spec) {
		if err := mw.WriteField(f.name, f.value); err != nil {
			return err
		}
	}
	for _, in := range inputs {
		if err := writeInput(mw, in); err != nil {
			return fmt.Errorf("input %s: %w", in.Name, err)
		}
	}
	return mw.Close()
}

func writeInput(mw *multipart.Writer, in Input) error {
	r, err := in.Open()
	if err != nil {
		return err
	}
	defer r.Close()
	w, err := mw.CreateFormFile("input", in.Name)
	if err != nil {
		return err
	}
	_, err = io.Copy(w, r)
	return err
}

type formField struct{ name, value string }

// specFields are the multipart fields of spec's non-zero settings, the
// module last, so the server checks the cheap settings first.
func specFields(s api.Spec) []formField {
	var fs []formField
	add := func(name, value string, set bool) {
		if set {
			fs = append(fs, formField{name, value})
		}
	}
	add("params", string(s.Params), len(s.Params) > 0)
	add("chunk_size", strconv.FormatInt(s.ChunkSize, 10), s.ChunkSize != 0)
	add("reducers", strconv.Itoa(s.Reducers), s.Reducers != 0)
	add("max_attempts", strconv.Itoa(s.MaxAttempts), s.MaxAttempts != 0)
	add("task_timeout", strconv.FormatFloat(s.TaskTimeout, 'f', -1, 64), s.TaskTimeout != 0)
	add("input_queue", s.InputQueue, s.InputQueue != "")
	add("output_queue", s.OutputQueue, s.OutputQueue != "")
	add("stream", "true", s.Stream)
	add("verify", string(s.Verify), s.Verify != "")
	add("module", s.Module, s.Module != "")
	add("mapper", s.Mapper, s.Mapper != "")
	add("reducer", s.Reducer, s.Reducer != "")
	return fs
}
