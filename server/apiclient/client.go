// Package apiclient is a Go client for a tabreduce server's job API, its
// stats and its health check. Job inputs are streamed as the request is sent
// and outputs as they arrive: nothing is held whole in memory.
package apiclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/tabreduce/tabreduce/api"
)

// Client talks to one server. It is safe for concurrent use.
type Client struct {
	base  string
	token string
	// HTTPClient sends the requests. It has no time-out of its own, since
	// uploads and outputs may take long: bound each call with its context.
	HTTPClient *http.Client
}

// New returns a client of the server at serverURL (e.g.
// http://127.0.0.1:8080) that sends token as a bearer token unless it is "".
func New(serverURL, token string) *Client {
	return &Client{base: strings.TrimRight(serverURL, "/"), token: token, HTTPClient: &http.Client{}}
}

// Error is the server's refusal of a request: its status and the code and
// message of its {"code": ..., "error": ...} body. errors.Is(err,
// api.ErrNotFound) and the like match it by its code.
type Error struct {
	StatusCode int
	Code       api.Code
	Message    string
}

// Error reads like "404 Not Found: job not found".
func (e *Error) Error() string {
	return fmt.Sprintf("%d %s: %s", e.StatusCode, http.StatusText(e.StatusCode), e.Message)
}

// Is matches an *api.Error of the same code.
func (e *Error) Is(target error) bool {
	var t *api.Error
	return errors.As(target, &t) && t.Code == e.Code
}

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 64 << 10

// readError turns a refusal into an *Error.
func readError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var eb api.Error
	msg := strings.TrimSpace(string(body))
	if json.Unmarshal(body, &eb) == nil && eb.Message != "" {
		msg = eb.Message
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return &Error{StatusCode: resp.StatusCode, Code: eb.Code, Message: msg}
}

// send sends a request with the token and returns the response if its
// status is want, else the server's error. ctype is the body's type, if any.
func (c *Client) send(ctx context.Context, method, path string, body io.Reader, ctype string, want int) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.HTTPClient.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != want {
		defer resp.Body.Close()
		return nil, readError(resp)
	}
	return resp, nil
}

// call is send with a JSON answer decoded into out.
func (c *Client) call(ctx context.Context, method, path string, body io.Reader, ctype string, want int, out any) error {
	resp, err := c.send(ctx, method, path, body, ctype, want)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decoding the answer: %w", method, path, err)
	}
	return nil
}

// get is call for a GET.
func (c *Client) get(ctx context.Context, path string, out any) error {
	return c.call(ctx, http.MethodGet, path, nil, "", http.StatusOK, out)
}
