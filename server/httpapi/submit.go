package httpapi

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/tabreduce/tabreduce/server/engine"
)

// maxJobField bounds one multipart text field (params). The spec's own
// bounds are the engine's (engine.CheckSettings): this layer only parses.
const maxJobField = 1 << 20

// wasmMagic starts every wasm module.
var wasmMagic = []byte("\x00asm")

// submission is a job request being read: its spec and its input so far.
type submission struct {
	spec  engine.Spec
	in    *engine.Input // nil until the first non-empty input file
	files int           // input files received, empty ones included
}

// jobRequest is the JSON form of a submission: the spec and, for small
// inputs, the input inline.
type jobRequest struct {
	engine.Spec
	Input *string `json:"input,omitempty"`
}

// submitJob is POST /api/v1/jobs, as multipart/form-data (fields module,
// params, chunk_size, reducers, max_attempts, task_timeout, input_queue,
// output_queue, stream and verify; file parts named input, streamed to disk one by one; a file part
// named module registers that module with the job) or as a JSON jobRequest.
// Everything is checked before the job is submitted; on any error the input
// received so far is discarded.
func (a *API) submitJob(c echo.Context) error {
	sub := &submission{}
	var err error
	if mediaType(c.Request()) == "multipart/form-data" {
		err = a.readMultipartJob(c, sub)
	} else { // JSON, whatever the Content-Type says: curl -d sends it as a form
		err = a.readJSONJob(c, sub)
	}
	if err == nil {
		err = a.checkSubmission(sub)
	}
	var st engine.Status
	if err == nil {
		st, err = a.engine.Submit(c.Request().Context(), sub.spec, sub.in)
	}
	if err != nil {
		if sub.in != nil {
			sub.in.Discard()
		}
		return err
	}
	return c.JSON(http.StatusCreated, jobView(st))
}

// readJSONJob reads a JSON jobRequest of at most MaxBody bytes.
func (a *API) readJSONJob(c echo.Context, sub *submission) error {
	if err := checkJSONType(c.Request()); err != nil {
		return err
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), c.Request().Body, a.cfg.MaxBody))
	if err != nil {
		return bodyError(err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var req jobRequest
	if err := dec.Decode(&req); err != nil {
		return badRequest("malformed JSON body: %v", err)
	}
	sub.spec = req.Spec
	if req.Input == nil {
		return nil
	}
	return a.addInput(sub, "input", strings.NewReader(*req.Input))
}

// readMultipartJob reads the parts in the order they come, so a client that
// sends its fields before its files has them checked before any upload.
func (a *API) readMultipartJob(c echo.Context, sub *submission) error {
	mr, err := c.Request().MultipartReader()
	if err != nil {
		return badRequest("malformed multipart body: %v", err)
	}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return bodyError(err)
		}
		err = a.readJobPart(c.Request().Context(), sub, part)
		part.Close()
		if err != nil {
			return err
		}
	}
}

func (a *API) readJobPart(ctx context.Context, sub *submission, part *multipart.Part) error {
	switch name := part.FormName(); name {
	case "input":
		return a.addInput(sub, part.FileName(), part)
	case "module", "mapper", "reducer":
		return a.readModulePart(ctx, sub, part, name)
	default:
		b, err := io.ReadAll(io.LimitReader(part, maxJobField+1))
		if err != nil {
			return bodyError(err)
		}
		if len(b) > maxJobField {
			return badRequest("field %s is longer than %d bytes", truncate(name, 40), maxJobField)
		}
		return setSpecField(&sub.spec, name, string(b))
	}
}

// readModulePart reads the module, mapper or reducer field: a built-in
// job's name or a registered module's sha256, or else (a file part, or
// bytes that start with wasm's magic) a module to register on the fly.
func (a *API) readModulePart(ctx context.Context, sub *submission, part *multipart.Part, field string) error {
	b, err := readModule(part, a.cfg.MaxModule)
	if err != nil {
		return err
	}
	ref := strings.TrimSpace(string(b))
	if part.FileName() != "" || bytes.HasPrefix(b, wasmMagic) {
		m, err := a.addModule(ctx, b, part.FileName())
		if err != nil {
			return err
		}
		ref = m.SHA256
	}
	switch field {
	case "mapper":
		sub.spec.Mapper = ref
	case "reducer":
		sub.spec.Reducer = ref
	default:
		sub.spec.Module = ref
	}
	return a.checkModule(ref)
}

// addInput streams one input file into the job's input. An empty file adds
// nothing, so a submission of empty files is refused before the engine
// sees it.
func (a *API) addInput(sub *submission, name string, r io.Reader) error {
	sub.files++
	if name == "" {
		name = "input" + strconv.Itoa(sub.files)
	}
	br := bufio.NewReaderSize(r, 64<<10)
	if _, err := br.Peek(1); errors.Is(err, io.EOF) {
		return nil
	} else if err != nil {
		return inputError(name, err)
	}
	if sub.in == nil {
		// The settings sent before the first input are checked before any
		// input is taken, so a refused spec costs no upload.
		if err := engine.CheckSettings(sub.spec); err != nil {
			return err
		}
		in, err := a.engine.NewInput()
		if err != nil {
			return err
		}
		sub.in = in
	}
	if _, err := sub.in.AddFile(name, br); err != nil {
		return inputError(name, err)
	}
	return nil
}

// inputError maps a failure to receive an input file: the body's limit is a
// 413, a body cut short a 400, anything else the engine's own error.
func inputError(name string, err error) error {
	var maxErr *http.MaxBytesError
	var he *echo.HTTPError
	switch {
	case errors.As(err, &maxErr), errors.As(err, &he):
		return bodyError(err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("input %s: the request body ended early", name)
	}
	return fmt.Errorf("input %s: %w", name, err)
}

// setSpecField sets one multipart field of the spec. An empty value leaves
// the default (HTML forms send every field).
func setSpecField(s *engine.Spec, name, v string) error {
	if v == "" {
		return nil
	}
	var err error
	switch name {
	case "params":
		s.Params = json.RawMessage(v)
		return nil
	case "input_queue":
		s.InputQueue = v
		return nil
	case "output_queue":
		s.OutputQueue = v
		return nil
	case "verify":
		s.Verify = engine.Verify(v)
		return nil
	case "stream":
		if s.Stream, err = strconv.ParseBool(v); err != nil {
			return badRequest("stream must be true or false, got %q", truncate(v, 32))
		}
		return nil
	case "chunk_size":
		s.ChunkSize, err = strconv.ParseInt(v, 10, 64)
	case "reducers":
		s.Reducers, err = strconv.Atoi(v)
	case "max_attempts":
		s.MaxAttempts, err = strconv.Atoi(v)
	case "task_timeout":
		s.TaskTimeout, err = strconv.ParseFloat(v, 64)
	default:
		return badRequest("unknown field %q: want module, mapper, reducer, input, params, chunk_size, reducers, max_attempts, task_timeout, input_queue, output_queue, stream or verify", truncate(name, 40))
	}
	if err != nil {
		return badRequest("%s must be a number, got %q", name, truncate(v, 32))
	}
	return nil
}

// checkSubmission checks what the request asked for as a whole.
func (a *API) checkSubmission(sub *submission) error {
	s := &sub.spec
	if err := engine.CheckSettings(*s); err != nil {
		return err
	}
	switch {
	case s.InputQueue != "" && sub.files > 0:
		return badRequest("give input files or input_queue, not both")
	case s.InputQueue == "" && sub.files == 0:
		return badRequest("no input: send input files (multipart parts named input), inline \"input\", or input_queue")
	case s.InputQueue == "" && sub.in == nil:
		return badRequest("the input is empty")
	}
	if cmp.Or(s.Mapper, s.Module) == "" || cmp.Or(s.Reducer, s.Module) == "" {
		return badRequest("module is required (or mapper and reducer): a built-in job's name or a registered module's sha256")
	}
	for _, ref := range []string{s.Module, s.Mapper, s.Reducer} {
		if ref != "" {
			if err := a.checkModule(ref); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkModule refuses a module that is neither a built-in job's name nor a
// registered module's sha256.
func (a *API) checkModule(ref string) error {
	if ref == "" {
		return badRequest("module is required: a built-in job's name or a registered module's sha256")
	}
	for _, m := range a.engine.Modules() {
		if ref == m.SHA256 || ref == m.Name {
			return nil
		}
	}
	return fmt.Errorf("%w: %q (GET /api/v1/modules lists them)", engine.ErrModuleNotFound, truncate(ref, 80))
}
