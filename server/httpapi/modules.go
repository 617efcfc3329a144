package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tabreduce/tabreduce/server/engine"
	"github.com/tabreduce/tabreduce/wasm/modenc"
	"github.com/tabreduce/tabreduce/wasm/runner"
)

// moduleRef is the answer to a module upload.
type moduleRef struct {
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// uploadModule is POST /api/v1/modules?name=FILE: the body is a .wasm
// module; name, if given, is what jobs and the module list call it.
func (a *API) uploadModule(c echo.Context) error {
	wasm, err := io.ReadAll(c.Request().Body) // bounded by limitBody
	if err != nil {
		return bodyError(err)
	}
	ref, err := a.addModule(c.Request().Context(), wasm, c.QueryParam("name"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, ref)
}

// addModule validates and registers a module. The engine refuses a bad
// one with an invalid-argument error (a 400) that names the problem: bad
// magic, a missing export, an import not allowed.
func (a *API) addModule(ctx context.Context, wasm []byte, name string) (moduleRef, error) {
	if len(wasm) == 0 {
		return moduleRef{}, badRequest("module: the body is empty, want a .wasm module")
	}
	sha, err := a.engine.AddModule(ctx, wasm, name)
	if errors.Is(err, runner.ErrBusy) {
		return moduleRef{}, &retryLater{err: err, after: 5}
	}
	if err != nil {
		return moduleRef{}, err
	}
	return moduleRef{SHA256: sha, Size: int64(len(wasm))}, nil
}

// readModule reads a module of at most max bytes from r.
func readModule(r io.Reader, max int64) ([]byte, error) {
	wasm, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, bodyError(err)
	}
	if int64(len(wasm)) > max {
		return nil, echo.NewHTTPError(http.StatusRequestEntityTooLarge, fmt.Sprintf("module is larger than %d bytes", max))
	}
	return wasm, nil
}

// listModules is GET /api/v1/modules: {"modules": [...]}, built-ins first.
func (a *API) listModules(c echo.Context) error {
	ms := a.engine.Modules()
	if ms == nil {
		ms = []engine.ModuleInfo{}
	}
	return c.JSON(http.StatusOK, map[string]any{"modules": ms})
}

// serveModule is GET /modules/{sha256}.wasm. The URL names the content, so
// the answer may be cached forever; If-None-Match gets a 304. The module is
// sent in the best coding the client accepts of those it is kept in (brotli,
// gzip), compressed once when it was built or uploaded.
func (a *API) serveModule(c echo.Context) error {
	sha, ok := strings.CutSuffix(c.Param("file"), ".wasm")
	if !ok || !isSHA256(sha) {
		return fmt.Errorf("%w: want /modules/<sha256>.wasm", engine.ErrModuleNotFound)
	}
	path, enc, err := a.modulePath(sha, c.Request().Header.Get("Accept-Encoding"))
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: %s", engine.ErrModuleNotFound, sha)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "application/wasm")
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Set("Vary", "Accept-Encoding")
	etag := sha
	if enc != modenc.Identity {
		h.Set("Content-Encoding", enc)
		etag += "." + enc
	}
	h.Set("ETag", `"`+etag+`"`)
	http.ServeContent(c.Response(), c.Request(), "", time.Time{}, f)
	return nil
}

// modulePath picks the coding of a module to send: the first one the
// client accepts that the module is kept in, else the module as it is.
func (a *API) modulePath(sha, acceptEncoding string) (path, enc string, err error) {
	for _, enc := range modenc.Accept(acceptEncoding) {
		if p, err := a.engine.ModuleEncodedPath(sha, enc); err == nil {
			return p, enc, nil
		}
	}
	path, err = a.engine.ModulePath(sha)
	return path, modenc.Identity, err
}

// isSHA256 reports whether s is a sha256 in lower-case hex.
func isSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, r := range s {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'f') {
			return false
		}
	}
	return true
}
