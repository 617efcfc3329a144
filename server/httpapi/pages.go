package httpapi

import (
	"bytes"
	"errors"
	"html/template"
	"net/http"
	"slices"

	"github.com/labstack/echo/v4"

	"github.com/tabreduce/tabreduce/server/broker"
	"github.com/tabreduce/tabreduce/static"
)

// Where RestMQ's redirects point: GET / goes to the index page, which is our
// landing page, and GET /queue to the JSON protocol's help page.
const (
	IndexPath = "/static/index.html"
	HelpPath  = "/static/help.html"
)

// jobPageLatest is how many of a queue's latest messages /j/{queue} lists.
const jobPageLatest = 10

var pageTemplates = template.Must(template.New("queues").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>queues for {{.Route}}</title></head>
<body><h1>Queues</h1><ul>
{{range .Names}}<li><a href="/{{$.Route}}/{{.}}">/{{$.Route}}/{{.}}</a></li>
{{end}}</ul><p><a href="` + IndexPath + `">tabreduce</a></p></body></html>
`))

var jobTemplate = template.Must(template.New("jobs").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>jobs in queue {{.Queue}}</title></head>
<body>
queue name: {{.Queue}}<br>
waiting: {{.Length}}<br>
in flight: {{.InFlight}}<br>
status: {{.Status}}, policy: {{.Policy}}<br>
<p>latest {{len .Latest}} jobs</p>
<ul>
{{range .Latest}}<li>{{.}}</li>
{{end}}</ul>
<p><a href="` + IndexPath + `">tabreduce</a></p>
</body></html>
`))

// indexPage is GET /static/index.html: the landing page.
func (a *API) indexPage(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "no-cache")
	return c.HTMLBlob(http.StatusOK, a.landing)
}

// queuePage is GET /q/: RestMQ's HTML list of the
// queues, each linked under the route.
func (a *API) queuePage(route string) echo.HandlerFunc {
	return func(c echo.Context) error {
		names, err := a.queueNames(c.Request().Context())
		if err != nil {
			return err
		}
		var b bytes.Buffer
		if err := pageTemplates.Execute(&b, map[string]any{"Route": route, "Names": names}); err != nil {
			return err
		}
		return c.HTMLBlob(http.StatusOK, b.Bytes())
	}
}

// jobPage is GET /j/{queue}: RestMQ's page for job schedulers, a queue's
// counts and the keys of its latest waiting messages, newest first.
func (a *API) jobPage(c echo.Context) error {
	q := c.Param("queue")
	ctx := c.Request().Context()
	st, err := a.broker.Stats(ctx, q)
	if errors.Is(err, broker.ErrQueueNotFound) {
		st.Status, st.Policy, err = a.broker.QueueState(ctx, q)
	}
	if err != nil {
		return err
	}
	var latest []string
	if st.LastID > 0 {
		from := st.LastID - min(st.LastID, jobPageLatest)
		msgs, err := a.broker.Scan(ctx, q, from, jobPageLatest)
		if err != nil {
			return err
		}
		for _, m := range msgs {
			latest = append(latest, m.Key())
		}
		slices.Reverse(latest)
	}
	var b bytes.Buffer
	err = jobTemplate.Execute(&b, map[string]any{
		"Queue": q, "Length": st.Length, "InFlight": st.InFlight,
		"Status": st.Status, "Policy": st.Policy, "Latest": latest,
	})
	if err != nil {
		return err
	}
	return c.HTMLBlob(http.StatusOK, b.Bytes())
}

// helpPage is GET /static/help.html: the JSON protocol's commands and a form
// that posts one, as RestMQ's help page has.
var helpPage = page(func() []byte {
	b, err := static.Page("help.html")
	if err != nil {
		panic("static: help.html is not embedded: " + err.Error())
	}
	return b
})
