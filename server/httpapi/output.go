package httpapi

import (
	"bufio"
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/tabreduce/tabreduce/api"
	"github.com/tabreduce/tabreduce/server/engine"
	"github.com/tabreduce/tabreduce/wasm/driver"
)

// outputFormats are the encodings of a job's output, by ?format= name.
var outputFormats = map[string]struct {
	contentType string
	encoder     func(w *bufio.Writer) engine.OutputFunc
}{
	"ndjson": {"application/x-ndjson", ndjsonPairs},
	"tsv":    {"text/tab-separated-values; charset=utf-8", tsvPairs},
}

// jobOutput is GET /api/v1/jobs/{id}/output[?format=ndjson|tsv]: the
// output pairs sorted by key, streamed. An error before the first bytes go
// out is answered with its status (a job not done is a 409); one after
// breaks the connection, so a client cannot take a cut stream for the
// whole output.
func (a *API) jobOutput(c echo.Context) error {
	name := c.QueryParam("format")
	if name == "" {
		name = "ndjson"
	}
	format, ok := outputFormats[name]
	if !ok {
		return badRequest("format must be ndjson or tsv, got %q", truncate(name, 32))
	}
	ctx, res := c.Request().Context(), c.Response()
	res.Header().Set(echo.HeaderContentType, format.contentType)
	w := bufio.NewWriterSize(res, 64<<10)
	encode := format.encoder(w)
	err := a.engine.Output(ctx, c.Param("id"), func(key, value []byte) error {
		if err := ctx.Err(); err != nil { // the client left
			return err
		}
		return encode(key, value)
	})
	if err == nil {
		err = w.Flush()
	}
	switch {
	case err == nil && !res.Committed: // no pairs
		res.WriteHeader(http.StatusOK)
		return nil
	case err == nil:
		return nil
	case !res.Committed:
		res.Header().Del(echo.HeaderContentType) // the error's answer sets its own
		return err
	}
	if ctx.Err() == nil {
		a.log.Warn("job output cut short", "job", c.Param("id"), "err", err)
	}
	panic(http.ErrAbortHandler) // Recover lets it through; net/http drops the connection
}

// ndjsonPairs writes one api.PairJSON per line: the same object an
// output queue receives for each record.
func ndjsonPairs(w *bufio.Writer) engine.OutputFunc {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return func(key, value []byte) error { return enc.Encode(api.NewPairJSON(key, value)) }
}

// tsvPairs writes key<TAB>value lines escaped as `tabreduce run` prints
// them; a write error surfaces at the final Flush.
func tsvPairs(w *bufio.Writer) engine.OutputFunc {
	return func(key, value []byte) error {
		driver.WriteTSVPair(w, key, value)
		return nil
	}
}
