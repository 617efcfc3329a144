package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tabreduce/tabreduce/server/broker"
)

// leaseJSON is one leased message.
type leaseJSON struct {
	Lease    string    `json:"lease"`
	Key      string    `json:"key"`
	Value    string    `json:"value"`
	Encoding string    `json:"encoding,omitempty"`
	Count    int64     `json:"count"`
	Attempts int       `json:"attempts"`
	Deadline time.Time `json:"deadline"`
	Error    string    `json:"error,omitempty"`
}

// leaseBody is the JSON body the lease routes accept; query or form fields
// of the same names work too.
type leaseBody struct {
	N          *int     `json:"n"`
	Visibility *float64 `json:"visibility"`
	Lease      string   `json:"lease"`
	Leases     []string `json:"leases"`
	Delay      *float64 `json:"delay"`
	Error      string   `json:"error"`
}

// readLeaseBody merges a JSON body (if any) with query and form fields.
func readLeaseBody(c echo.Context) (leaseBody, error) {
	var lb leaseBody
	r := c.Request()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return lb, bodyError(err)
	}
	if err := r.ParseForm(); err != nil { // the query: the body is read already
		return lb, badRequest("malformed query: %v", err)
	}
	switch trimmed := bytes.TrimSpace(body); {
	case len(trimmed) > 0 && trimmed[0] == '{':
		// JSON, whatever the Content-Type says: curl -d sends JSON as a
		// form. Browsers must say JSON.
		if err := checkJSONType(r); err != nil {
			return lb, err
		}
		if leases, ok := plainLeases(trimmed); ok {
			lb.Leases = leases
		} else if err := json.Unmarshal(trimmed, &lb); err != nil {
			return lb, badRequest("malformed JSON body: %v", err)
		}
	case isForm(r):
		vals, err := url.ParseQuery(string(body))
		if err != nil {
			return lb, badRequest("malformed form: %v", err)
		}
		for k, v := range vals {
			r.Form[k] = append(v, r.Form[k]...)
		}
	case len(trimmed) > 0:
		return lb, badRequest("the body must be a JSON object or a form")
	}
	if v, ok := formValue(r, "n"); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			return lb, badRequest("n must be a whole number, got %q", truncate(v, 32))
		}
		lb.N = &n
	}
	for _, name := range []string{"visibility", "delay"} {
		if v, ok := formValue(r, name); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return lb, badRequest("%s must be a number of seconds, got %q", name, truncate(v, 32))
			}
			if name == "visibility" {
				lb.Visibility = &f
			} else {
				lb.Delay = &f
			}
		}
	}
	if v, ok := formValue(r, "lease"); ok {
		lb.Lease = v
	}
	if v, ok := formValue(r, "error"); ok {
		lb.Error = v
	}
	return lb, nil
}

func optSeconds(name string, f *float64) (time.Duration, error) {
	if f == nil {
		return 0, nil
	}
	return seconds(name, *f)
}

// lease is POST /api/v1/queues/{queue}/lease?n=&visibility=.
func (a *API) lease(c echo.Context) error {
	lb, err := readLeaseBody(c)
	if err != nil {
		return err
	}
	n := 1
	if lb.N != nil {
		n = *lb.N
	}
	vis, err := optSeconds("visibility", lb.Visibility)
	if err != nil {
		return err
	}
	leases, err := a.broker.Lease(c.Request().Context(), c.Param("queue"), n, vis)
	status := broker.StatusActive
	if errors.Is(err, broker.ErrQueuePaused) {
		status, err = broker.StatusPaused, nil
	}
	if err != nil {
		return err
	}
	out := make([]leaseJSON, len(leases))
	for i, l := range leases {
		out[i] = leaseJSON{
			Lease: l.ID, Key: l.Message.Key(), Count: l.Message.Count,
			Attempts: l.Message.Attempts, Deadline: l.Deadline, Error: l.Message.Error,
		}
		out[i].Value, out[i].Encoding = encodeValue(l.Message.Value)
	}
	return writeLeases(c, c.Param("queue"), status, out)
}

// ack is POST /api/v1/queues/{queue}/ack with "lease" or "leases".
func (a *API) ack(c echo.Context) error {
	lb, err := readLeaseBody(c)
	if err != nil {
		return err
	}
	ids := lb.Leases
	if lb.Lease != "" {
		ids = append(ids, lb.Lease)
	}
	if len(ids) == 0 {
		return badRequest(`ack needs "lease" or "leases"`)
	}
	unknown, err := a.broker.Ack(c.Request().Context(), c.Param("queue"), ids)
	if err != nil {
		return err
	}
	if len(unknown) == len(ids) {
		return echo.NewHTTPError(http.StatusNotFound, "lease not found: "+truncate(unknown[0], 64))
	}
	if unknown == nil {
		unknown = []string{}
	}
	return c.JSON(http.StatusOK, map[string]any{"acked": len(ids) - len(unknown), "unknown": unknown})
}

// nack is POST /api/v1/queues/{queue}/nack with "lease", optional "delay"
// (seconds) and "error".
func (a *API) nack(c echo.Context) error {
	lb, err := readLeaseBody(c)
	if err != nil {
		return err
	}
	if lb.Lease == "" {
		return badRequest(`nack needs "lease"`)
	}
	delay, err := optSeconds("delay", lb.Delay)
	if err != nil {
		return err
	}
	dead, err := a.broker.Nack(c.Request().Context(), c.Param("queue"), lb.Lease, delay, lb.Error)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"lease": lb.Lease, "dead_lettered": dead})
}

// extend is POST /api/v1/queues/{queue}/extend with "lease" and "visibility".
func (a *API) extend(c echo.Context) error {
	lb, err := readLeaseBody(c)
	if err != nil {
		return err
	}
	if lb.Lease == "" {
		return badRequest(`extend needs "lease"`)
	}
	vis, err := optSeconds("visibility", lb.Visibility)
	if err != nil {
		return err
	}
	l, err := a.broker.Extend(c.Request().Context(), c.Param("queue"), lb.Lease, vis)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"lease": l.ID, "deadline": l.Deadline})
}
