package static_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/chromedp/chromedp"

	"github.com/tabreduce/tabreduce/server"
)

const wordcountPkg = "github.com/tabreduce/tabreduce/jobs/wordcount"

// corpus returns about n bytes of text: a Zipf-distributed vocabulary of
// ASCII and non-ASCII words, mixed case and punctuation, the same bytes on
// every run.
func corpus(n int) []byte {
	rng := rand.New(rand.NewSource(7))
	extra := []string{"Straße", "ÉCOLE", "école", "東京", "ΣΊΣΥΦΟΣ", "naïve", "2024年"}
	vocab := make([]string, 5000)
	for i := range vocab {
		w := make([]byte, 2+rng.Intn(8))
		for j := range w {
			w[j] = byte('a' + rng.Intn(26))
		}
		if i%9 == 0 {
			w[0] -= 'a' - 'A'
		}
		vocab[i] = string(w)
	}
	z := rand.NewZipf(rng, 1.2, 1, uint64(len(vocab)-1))
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		if i%50 == 0 {
			b.WriteString(extra[rng.Intn(len(extra))])
		} else {
			b.WriteString(vocab[z.Uint64()])
		}
		switch {
		case i%11 == 0:
			b.WriteString(".\n")
		case i%5 == 0:
			b.WriteString(", ")
		default:
			b.WriteByte(' ')
		}
	}
	return b.Bytes()
}

// wordcountOracle is the plain-Go answer: words are maximal runs of letters
// and digits, lower-cased, output as TSV sorted by word.
func wordcountOracle(text []byte) []byte {
	counts := map[string]int{}
	for _, w := range strings.FieldsFunc(string(text), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		counts[strings.ToLower(w)]++
	}
	words := make([]string, 0, len(counts))
	for w := range counts {
		words = append(words, w)
	}
	slices.Sort(words)
	var out bytes.Buffer
	for _, w := range words {
		out.WriteString(w + "\t" + strconv.Itoa(counts[w]) + "\n")
	}
	return out.Bytes()
}

// submitMultipart submits a job as the dashboard's form does.
func submitMultipart(t testing.TB, srv *server.Server, fields map[string]string, input []byte) string {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, k := range []string{"module", "mapper", "reducer", "reducers", "chunk_size", "max_attempts", "task_timeout", "verify"} {
		if v, ok := fields[k]; ok {
			mw.WriteField(k, v)
		}
	}
	fw, _ := mw.CreateFormFile("input", "corpus.txt")
	fw.Write(input)
	mw.Close()
	resp, err := http.Post(srv.URL()+"/api/v1/jobs", mw.FormDataContentType(), &body)
	if err != nil {
		t.Fatal(err)
	}
	var st jobStatus
	decodeJSON(t, resp, http.StatusCreated, &st)
	return st.ID
}

// TestBrowserWordcount: two worker tabs run wordcount on a generated corpus
// submitted from the dashboard; one tab is closed mid-job; the output must
// equal the plain-Go oracle byte for byte, and the dashboard must have shown
// the job's progress.
func TestBrowserWordcount(t *testing.T) {
	bctx := browser(t)
	srv := startServer(t)
	sha := uploadModule(t, srv, wordcountPkg)

	tab1, close1 := tab(t, bctx, srv.URL()+"/worker?slots=1&name=tab1")
	tab(t, bctx, srv.URL()+"/worker?slots=1&name=tab2")
	waitUntil(t, 20*time.Second, "two browser workers connect", func() bool { return browserWorkers(srv) == 2 })

	text := corpus(6 << 20)
	inputPath := filepath.Join(t.TempDir(), "corpus.txt")
	if err := os.WriteFile(inputPath, text, 0o644); err != nil {
		t.Fatal(err)
	}
	dash, _ := tab(t, bctx, srv.URL()+"/dashboard")
	// Submit from the dashboard's form: the uploaded module, 3 reducers,
	// 64 KiB chunks (about 100 map tasks), the corpus as a file.
	sctx, cancel := context.WithTimeout(dash, 30*time.Second)
	defer cancel()
	err := chromedp.Do(sctx,
		// The module is the built-in wordcount when make jobs built the
		// same bytes; either way its option carries the sha256.
		chromedp.WaitReady(chromedp.CSS(`#module option[data-sha="`+sha+`"]`)),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Evaluate[bool](`(() => { const s = document.querySelector('#module'); s.value = s.querySelector('option[data-sha="`+sha+`"]').value; return true })()`)(ctx, tg)
			return err
		}),
		chromedp.SetValue(chromedp.CSS(`#reducers`), "3"),
		chromedp.SetValue(chromedp.CSS(`#chunk`), "64"),
		chromedp.SetUploadFiles(chromedp.CSS(`#inputFiles`), []string{inputPath}),
		chromedp.Click(chromedp.CSS(`#submitBtn`)),
		chromedp.WaitReady(chromedp.CSS(`#submitMsg[data-job]`)),
	)
	if err != nil {
		t.Fatalf("submit from the dashboard: %v (the page says %q)", err, evalJS[string](t, dash, `document.querySelector('#submitMsg').textContent`))
	}
	id := evalJS[string](t, dash, `document.querySelector('#submitMsg').dataset.job`)

	// Once tab1 has done some of the work, close it mid-job.
	waitUntil(t, 30*time.Second, "tab1 finishes a task", func() bool {
		return evalJS[int](t, tab1, `window.tabreduce.last ? window.tabreduce.last.tasksDone : 0`) >= 3
	})
	st := getJob(t, srv, id)
	if st.State != "mapping" {
		t.Fatalf("job %s is %s before a tab closed, want mapping: make the corpus larger", id, st.State)
	}
	// The dashboard shows the running job's progress.
	sel := fmt.Sprintf(`tr[data-job=%q] .bar[data-phase="map"]`, id)
	waitUntil(t, 5*time.Second, "the dashboard shows map progress", func() bool {
		return evalJS[int](t, dash, `(() => { const b = document.querySelector(`+jsString(sel)+`); return b ? +b.dataset.done : -1 })()`) > 0
	})
	screenshot(t, dash, "dashboard-running.png")
	close1()
	waitUntil(t, 10*time.Second, "the closed tab's session ends", func() bool { return browserWorkers(srv) == 1 })

	st = waitJob(t, srv, id, 90*time.Second)
	if st.State != "done" {
		t.Fatalf("job %s: %s (%s)", id, st.State, st.Error)
	}
	got, want := fetchOutput(t, srv, id), wordcountOracle(text)
	if !bytes.Equal(got, want) {
		t.Fatalf("output differs from the oracle: %s", firstDiff(got, want))
	}
	waitUntil(t, 5*time.Second, "the dashboard shows the job done", func() bool {
		return evalJS[string](t, dash, `(() => { const r = document.querySelector(`+jsString(fmt.Sprintf(`tr[data-job=%q]`, id))+`); return r ? r.dataset.state : '' })()`) == "done"
	})
	screenshot(t, dash, "dashboard-done.png")
}
